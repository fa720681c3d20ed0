// WebM/Matroska demuxing with Mediabunny (a maintained pure-JS demuxer with a browser ES build):
// the frame list of the first video track (times, keyframe flags) and its WebCodecs decoder config.
// Mediabunny reads the Blob lazily in slices, so a long file is never held in memory whole.
import { Input, BlobSource, EncodedPacketSink, MATROSKA, WEBM } from '../vendor/mediabunny/mediabunny.min.mjs';
import { videoError } from './errors.js';

/** Demux a WebM/MKV Blob: see the Demuxed shape in video.js. */
export async function demuxWebm(blob) {
  const segment = await checkNotTruncated(blob);
  await checkResyncable(blob, segment);
  const input = new Input({ source: new BlobSource(blob), formats: [WEBM, MATROSKA] });
  try {
    const track = await input.getPrimaryVideoTrack();
    if (!track) throw videoError('CorruptVideo', 'This WebM/MKV file has no video track (audio only?).');
    const config = await track.getDecoderConfig();
    if (!config) throw videoError('UnsupportedCodec', `This WebM/MKV file's video codec (${await track.getInternalCodecId()}) is not one this app can decode. Re-encode the video to H.264 (MP4) or VP9 (WebM).`);
    const sink = new EncodedPacketSink(track);
    // Plain numbers only: a packet object keeps its whole cluster's bytes alive.
    const frames = [];
    const seqs = [];
    for await (const p of sink.packets(undefined, undefined, { metadataOnly: true })) {
      frames.push({ pts: p.timestamp, dur: p.duration, key: p.type === 'key' });
      seqs.push(p.sequenceNumber);
    }
    if (frames.length === 0) throw videoError('CorruptVideo', 'The video track of this WebM/MKV file has no frames.');
    return {
      container: 'webm',
      config: decoderConfig(config),
      width: await track.getSquarePixelWidth(),
      height: await track.getSquarePixelHeight(),
      rotation: ((await track.getRotation()) % 360 + 360) % 360,
      frames,
      async *read(from, to) {
        let i = from;
        for await (const p of sink.packets(await packetAt(sink, frames, seqs, from))) {
          if (p.sequenceNumber !== seqs[i]) throw videoError('CorruptVideo', `WebM frame ${i} could not be found again in the file.`);
          yield p.data;
          if (++i > to) break;
        }
        if (i <= to) throw videoError('CorruptVideo', `The WebM/MKV file ended before frame ${i} (of ${frames.length}).`);
      },
      close() { input.dispose(); },
    };
  } catch (e) {
    input.dispose();
    throw e;
  }
}

/**
 * The parts of Mediabunny's config a decoder needs. The colour space (from the Colour element) is
 * kept when complete: VP8's bitstream has none, and without it Chromium guesses BT.709.
 */
function decoderConfig({ codec, codedWidth, codedHeight, description, colorSpace }) {
  const config = { codec, codedWidth, codedHeight };
  if (description) config.description = description;
  const { primaries, transfer, matrix, fullRange } = colorSpace ?? {};
  if (primaries && transfer && matrix) config.colorSpace = { primaries, transfer, matrix, fullRange: !!fullRange };
  return config;
}

/** The full packet at decode index i, found by its timestamp (or, failing that, by walking from the start). */
async function packetAt(sink, frames, seqs, i) {
  const p = await sink.getPacket(frames[i].pts);
  if (p && p.sequenceNumber === seqs[i]) return p;
  if (i === 0) return sink.getFirstPacket();
  let q = await sink.getFirstPacket({ metadataOnly: true });
  while (q && q.sequenceNumber !== seqs[i - 1]) q = await sink.getNextPacket(q, { metadataOnly: true });
  const r = q && await sink.getNextPacket(q);
  if (!r) throw videoError('CorruptVideo', `WebM frame ${i} could not be found again in the file.`);
  return r;
}

/**
 * A Segment with a declared size that runs past the end of the file is a cut-off download (a live
 * recording writes an unknown size instead, and is read as far as it goes).
 */
async function checkNotTruncated(blob) {
  const b = new Uint8Array(await blob.slice(0, 4096).arrayBuffer());
  const ebml = vint(b, 0, true);
  const ebmlSize = ebml && vint(b, ebml.next, false);
  if (!ebmlSize || ebml.value !== 0x1a45dfa3) throw videoError('CorruptVideo', 'The WebM/MKV header is damaged.');
  const segAt = ebmlSize.next + ebmlSize.value;
  const seg = vint(b, segAt, true);
  const segSize = seg && vint(b, seg.next, false);
  if (!segSize || seg.value !== 0x18538067) throw videoError('CorruptVideo', 'The WebM/MKV file has no Segment after its header (damaged or truncated).');
  if (segSize.unknown) return { start: segSize.next, end: null };
  const end = segSize.next + segSize.value;
  if (end > blob.size) {
    throw videoError('CorruptVideo', `This WebM/MKV file is truncated: it is ${blob.size} bytes but its header says ${end}.`);
  }
  return { start: segSize.next, end };
}

// Level-1 elements (SeekHead, Info, Cluster, Tracks, Cues, Attachments, Chapters, Tags) and Void.
const LEVEL_1 = new Set([0x114d9b74, 0x1549a966, 0x1f43b675, 0x1654ae6b, 0x1c53bb6b, 0x1941a469, 0x1043a770, 0x1254c367]);
const VOID = 0xec;
const MAX_RESYNC = 10 << 20; // Mediabunny's MAX_RESYNC_LENGTH

/**
 * Mediabunny (1.61.0, the newest) walks the Segment's level-1 elements and, at junk, scans for the
 * next level-1 ID; a scan that finds none before the end of a sized range never ends (its loop stops
 * advancing 8 bytes short of the range's end), and one that finds the junk's own position (a level-1
 * ID with a broken size) repeats forever: either freezes the page. Walk the same way first and name
 * such damage instead; junk it can resync past, or that runs to the end of the file, is left to it.
 */
async function checkResyncable(blob, { start, end }) {
  const limit = end ?? blob.size;
  let pos = start;
  while (pos < limit) {
    const b = new Uint8Array(await blob.slice(pos, pos + 16).arrayBuffer());
    const id = vint(b, 0, true);
    const size = id && vint(b, id.next, false);
    if (size && (LEVEL_1.has(id.value) || id.value === VOID)) {
      if (size.unknown) return; // a live recording's cluster without a size: read as it streams
      pos += size.next + size.value;
      continue;
    }
    const until = Math.min(end ?? Infinity, pos + MAX_RESYNC);
    if (until > blob.size) return; // the scan reaches the end of the file and stops there
    // Found where it started (a level-1 ID with a broken size): Mediabunny would resync there forever.
    const next = await findLevel1(blob, pos, until - 8);
    if (next === null || next === pos) {
      throw videoError('CorruptVideo', `This WebM/MKV file is damaged at byte ${pos}: no readable element follows it.`);
    }
    pos = next;
  }
}

/** The first offset in [from, to) where a level-1 element ID starts, or null. */
async function findLevel1(blob, from, to) {
  if (to <= from) return null;
  const b = new Uint8Array(await blob.slice(from, to + 3).arrayBuffer());
  for (let i = 0; i < to - from; i++) {
    if (b[i] < 0x10 || b[i] > 0x1f) continue; // every level-1 ID is 4 bytes: first byte 0x1X
    const id = ((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0;
    if (LEVEL_1.has(id)) return from + i;
  }
  return null;
}

/** An EBML variable-length integer at b[at]: an element ID (marker bit kept) or a size. */
function vint(b, at, keepMarker) {
  if (at >= b.length || b[at] === 0) return null;
  const len = Math.clz32(b[at]) - 23; // 1..8
  if (at + len > b.length) return null;
  let value = keepMarker ? b[at] : b[at] & (0xff >> len);
  let allOnes = value === (0xff >> len);
  for (let k = 1; k < len; k++) {
    value = value * 256 + b[at + k];
    allOnes &&= b[at + k] === 0xff;
  }
  return { value, next: at + len, unknown: !keepMarker && allOnes };
}
