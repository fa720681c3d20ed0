// MP4/MOV demuxing with mp4box.js: the sample tables of the first video track (times, keyframes,
// byte ranges) and its decoder config. Only the 'moov' (and any 'moof') boxes are parsed; frame bytes
// are read from the Blob on demand, so a long file is never loaded whole.
import { createFile, DataStream, Endianness, MP4BoxBuffer } from '../vendor/mp4box/mp4box.all.mjs';
import { videoError } from './errors.js';

const CHUNK = 1 << 20; // bytes fed to the box parser at a time
const MAX_READ = 8 << 20; // largest single Blob read when fetching frame bytes
const MAX_GAP = 256 << 10; // other tracks' bytes (audio) read over rather than split a read

/** Demux an MP4/MOV Blob: see the Demuxed shape in video.js. */
export async function demuxMp4(blob) {
  const file = createFile(); // discards 'mdat' payloads: we only want the tables
  let parseError = null;
  file.onError = (module, message) => { parseError ??= `${module}: ${message}`; };
  let pos = 0;
  while (pos < blob.size) {
    const end = Math.min(blob.size, pos + CHUNK);
    const buf = MP4BoxBuffer.fromArrayBuffer(await blob.slice(pos, end).arrayBuffer(), pos);
    const next = file.appendBuffer(buf, end === blob.size);
    // A plain (non-fragmented) file is fully described once 'moov' is in; a fragmented one keeps
    // sample tables in every 'moof', so it is walked to the end ('mdat' bodies are skipped over).
    if (file.moov && !file.moov.mvex) break;
    pos = Number.isFinite(next) && next > pos ? next : end;
  }
  file.flush();
  if (!file.moov) {
    throw videoError('CorruptVideo', `This MP4/MOV file has no index ('moov' box)${parseError ? ` (${parseError})` : ''}: it is probably truncated (an unfinished download or recording).`);
  }
  const trak = file.moov.traks.find((t) => t.mdia?.hdlr?.handler === 'vide');
  if (!trak) throw videoError('CorruptVideo', 'This MP4/MOV file has no video track (audio only?).');
  const samples = trak.samples ?? [];
  if (samples.length === 0) throw videoError('CorruptVideo', 'The video track of this MP4/MOV file has no frames.');
  const last = samples.reduce((a, s) => Math.max(a, s.offset + s.size), 0);
  if (last > blob.size) {
    throw videoError('CorruptVideo', `This MP4/MOV file is truncated: it is ${blob.size} bytes but its frames run to byte ${last}.`);
  }

  const entry = trak.mdia.minf.stbl.stsd.entries[0];
  const timescale = trak.mdia.mdhd.timescale;
  const frames = samples.map((s) => ({ pts: s.cts / timescale, dur: s.duration / timescale, key: !!s.is_sync }));
  const width = Math.round(trak.tkhd.width / 65536) || entry.width;
  const height = Math.round(trak.tkhd.height / 65536) || entry.height;
  const config = { codec: codecString(entry), codedWidth: entry.width, codedHeight: entry.height };
  const description = codecDescription(entry);
  if (description) config.description = description;

  return {
    container: 'mp4',
    config,
    width,
    height,
    rotation: rotationOf(trak.tkhd.matrix),
    frames,
    async *read(from, to) {
      for (let i = from; i <= to;) {
        // One Blob read for a run of frames stored in order, back to back or with small gaps
        // (interleaved audio): a GOP is usually one read.
        let j = i;
        while (j < to) {
          const gap = samples[j + 1].offset - (samples[j].offset + samples[j].size);
          if (gap < 0 || gap > MAX_GAP || samples[j + 1].offset + samples[j + 1].size - samples[i].offset > MAX_READ) break;
          j++;
        }
        const start = samples[i].offset;
        const bytes = new Uint8Array(await blob.slice(start, samples[j].offset + samples[j].size).arrayBuffer());
        for (let k = i; k <= j; k++) yield bytes.subarray(samples[k].offset - start, samples[k].offset - start + samples[k].size);
        i = j + 1;
      }
    },
    close() {},
  };
}

/**
 * The WebCodecs codec string. For VP9 the long form from vpcC: the short one mp4box gives
 * (vp09.PP.LL.DD) implies BT.709 colour, which mis-renders a BT.601 file.
 */
function codecString(entry) {
  const c = entry.vpcC;
  if (entry.type === 'vp09' && c?.version === 1) {
    const f = [c.profile, c.level, c.bitDepth, c.chromaSubsampling, c.colourPrimaries, c.transferCharacteristics, c.matrixCoefficients, c.videoFullRangeFlag];
    return `vp09.${f.map((v) => String(v).padStart(2, '0')).join('.')}`;
  }
  return entry.getCodec();
}

/** The codec configuration box a WebCodecs decoder wants as `description` (its body, no box header). */
function codecDescription(entry) {
  // VP8/VP9 (vpcC) take none: their registration defines no description; the codec string carries vpcC.
  const box = entry.avcC ?? entry.hvcC ?? entry.av1C;
  if (!box) return undefined;
  const stream = new DataStream(undefined, 0, Endianness.BIG_ENDIAN);
  box.write(stream);
  return new Uint8Array(stream.buffer, 8); // skip size + type
}

/** Clockwise display rotation (0/90/180/270) from the track header's 3x3 matrix (16.16 fixed point). */
function rotationOf(m) {
  if (!m) return 0;
  const deg = Math.round(Math.atan2(m[1] | 0, m[0] | 0) * 180 / Math.PI);
  return ((Math.round(deg / 90) * 90) % 360 + 360) % 360;
}
