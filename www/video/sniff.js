// Which container a file is, from its first bytes (never from its name: a renamed file lies).
import { videoError } from './errors.js';

const MP4_BOXES = new Set(['ftyp', 'moov', 'mdat', 'free', 'skip', 'wide', 'pnot', 'uuid', 'styp', 'sidx', 'moof']);
const SUPPORTED = 'Supported formats: MP4 and MOV (H.264, HEVC, VP9 or AV1 video) and WebM/MKV (VP8, VP9 or AV1 video).';

/** 'mp4' | 'webm', or throws CorruptVideo (empty) / UnsupportedContainer (anything else). */
export async function sniffContainer(blob) {
  if (blob.size === 0) throw videoError('CorruptVideo', 'The file is empty (0 bytes).');
  const b = new Uint8Array(await blob.slice(0, 512).arrayBuffer());
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return 'webm';
  const type = ascii(b, 4, 8);
  if (b.length >= 8 && MP4_BOXES.has(type)) return 'mp4';
  throw videoError('UnsupportedContainer', `This file is not a video format that can be opened here (${describe(b)}). ${SUPPORTED}`);
}

function ascii(b, from, to) {
  return String.fromCharCode(...b.subarray(from, to));
}

/** A few words on what the file looks like, for the message. */
function describe(b) {
  if (b.length < 8) return `only ${b.length} bytes long`;
  const head = ascii(b, 0, 4);
  if (head === 'RIFF' && ascii(b, 8, 12) === 'AVI ') return 'it is an AVI file';
  if (head === 'OggS') return 'it is an Ogg file';
  if (head.startsWith('FLV')) return 'it is an FLV file';
  if (head.startsWith('GIF8')) return 'it is a GIF image';
  if (b[0] === 0x89 && head.slice(1) === 'PNG') return 'it is a PNG image';
  if (b[0] === 0xff && b[1] === 0xd8) return 'it is a JPEG image';
  if (b[0] === 0x47 && (b.length < 189 || b[188] === 0x47)) return 'it looks like an MPEG transport stream';
  if (b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0xba) return 'it is an MPEG program stream';
  // Text: no control bytes but tab/newline/CR (UTF-8 multibyte sequences are >= 0x80).
  if (b.every((c) => c >= 0x20 || c === 9 || c === 10 || c === 13)) return 'it is a text file';
  return 'unknown format';
}
