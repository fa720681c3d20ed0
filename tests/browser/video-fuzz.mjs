// Property-based test (fast-check) of the app's video layer (www/video/) on mutated files: small
// ffmpeg-made MP4 / MOV / fragmented MP4 / WebM clips get 0-4 mutations (bit flips, overwritten
// bytes, box / element sizes poked at their headers, insertions, cut ranges, truncation), then
// headless Chromium opens each with openVideo and decodes its first, middle and last frames.
// Every file must end within PER_FILE_MS with frames of the right count and size, or with one of
// the module's named errors (UnsupportedContainer, UnsupportedCodec, CorruptVideo); an unmutated
// clip must give the right frames (the pattern's frame numbers). Failing files found earlier are
// replayed first from tests/fixtures/fuzz/video/. A failure is shrunk by fast-check and written to
// target/video-fuzz/failure.*.
//   node tests/browser/video-fuzz.mjs [files=60] [seed]      (exit 0: all passed)
import { launch, executablePath } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { serve } from '../../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'target/video-fuzz');
const regressions = path.join(root, 'tests/fixtures/fuzz/video');
const runs = Number(process.argv[2] ?? 60);
const seed = Number(process.argv[3] ?? Date.now() % 2 ** 31);
const PER_FILE_MS = 15_000;
const NAMED = new Set(['UnsupportedContainer', 'UnsupportedCodec', 'CorruptVideo']);

/** 2 s at 10 fps, 64 x 48: frame n shows n's bits (bit 0 leftmost) as bars above red | blue. */
function pattern() {
  const bars = "255*gt(bitand(N,pow(2,floor(X*8/W))),0)";
  return `color=c=black:s=64x48:r=10:d=2,format=gbrp,`
    + `geq=r='if(lt(Y,H/2),${bars},255*lt(X,W/2))':g='if(lt(Y,H/2),${bars},0)':b='if(lt(Y,H/2),${bars},255*gte(X,W/2))',format=yuv420p`;
}
const h264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-bf', '2', '-pix_fmt', 'yuv420p', '-g', '10'];
const vp9 = ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '200k', '-g', '10'];
const CLIPS = {
  'h264.mp4': h264, // 'moov' after 'mdat'
  'faststart.mp4': [...h264, '-movflags', '+faststart'],
  'frag.mp4': [...h264, '-movflags', 'frag_keyframe+empty_moov+default_base_moof'],
  'h264.mov': [...h264, '-f', 'mov'],
  'vp9.webm': vp9,
  'vp8.webm': ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '200k', '-g', '10'],
};

function makeClips() {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const clips = {};
  for (const [name, args] of Object.entries(CLIPS)) {
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'lavfi', '-i', pattern(), ...args, path.join(dir, name)], { stdio: 'inherit' });
    const bytes = fs.readFileSync(path.join(dir, name));
    clips[name] = { bytes, marks: headerMarks(bytes) };
  }
  return clips;
}

/**
 * Offsets of MP4 box size fields (4 bytes before a known box type) and of EBML element ids that
 * Matroska files hold, so that mutations also hit the structure, not only the frame data.
 */
function headerMarks(b) {
  const marks = [];
  const types = ['ftyp', 'moov', 'mvhd', 'trak', 'tkhd', 'mdia', 'mdhd', 'hdlr', 'minf', 'stbl', 'stsd', 'avc1', 'avcC', 'stts', 'ctts', 'stss', 'stsc', 'stsz', 'stco', 'co64', 'mdat', 'moof', 'traf', 'tfhd', 'trun', 'mvex', 'trex', 'edts', 'elst'];
  for (const t of types) for (let at = b.indexOf(t); at >= 4; at = b.indexOf(t, at + 1)) marks.push(at - 4);
  const ids = [[0x1a, 0x45, 0xdf, 0xa3], [0x18, 0x53, 0x80, 0x67], [0x16, 0x54, 0xae, 0x6b], [0x1f, 0x43, 0xb6, 0x75], [0x1c, 0x53, 0xbb, 0x6b], [0xae], [0xa3], [0xe7], [0x86], [0xb0], [0xba]];
  for (const id of ids) {
    for (let at = b.indexOf(Buffer.from(id)); at >= 0 && marks.length < 4000; at = b.indexOf(Buffer.from(id), at + 1)) marks.push(at + id.length);
  }
  return marks.length ? marks : [0];
}

/** One mutation, as data (printable when fast-check reports a counterexample). */
function mutationArb(marks) {
  const pos = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true }), fc.constantFrom(...marks));
  const u32 = fc.constantFrom(0, 1, 7, 8, 0x7fffffff, 0xffffffff, 0x01000000, 0x10);
  return fc.oneof(
    fc.record({ kind: fc.constant('flip'), at: pos, bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('set'), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('u32'), at: pos, value: fc.oneof(u32, fc.nat()) }),
    fc.record({ kind: fc.constant('insert'), at: pos, bytes: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ kind: fc.constant('cut'), at: pos, length: fc.integer({ min: 1, max: 4096 }) }),
    fc.record({ kind: fc.constant('truncate'), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
  );
}

function apply(bytes, mutations) {
  let b = Buffer.from(bytes);
  for (const m of mutations) {
    const at = Number.isInteger(m.at) ? Math.min(m.at, b.length) : Math.floor(m.at * b.length);
    if (m.kind === 'flip' && at < b.length) b[at] ^= 1 << m.bit;
    else if (m.kind === 'set') Buffer.from(m.bytes).copy(b, at);
    else if (m.kind === 'u32' && at + 4 <= b.length) b.writeUInt32BE(m.value >>> 0, at);
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from(m.bytes), b.subarray(at)]);
    else if (m.kind === 'cut') b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.length)]);
    else if (m.kind === 'truncate') b = b.subarray(0, at);
  }
  return b;
}

if (!fs.existsSync(executablePath)) {
  console.error(`FAILED: no Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
  process.exit(1);
}
const t0 = Date.now();
const clips = makeClips();
const { server, url } = await serve(root);
const browser = await launch();
let page = null;
async function freshPage() {
  if (page) await page.close().catch(() => {});
  page = await browser.newPage();
  page.on('pageerror', (e) => console.log(`[browser error] ${e.message}`));
  await page.goto(`${url}/tests/browser/video-fuzz.html`);
  await page.waitForFunction(() => window.__ready === true, null, { timeout: 30_000 });
}

/** Opens and decodes `bytes` in the page; a file still running after PER_FILE_MS is a hang. */
async function tryFile(bytes) {
  let timer;
  const hang = new Promise((resolve) => { timer = setTimeout(() => resolve({ outcome: 'hang', ms: PER_FILE_MS }), PER_FILE_MS); });
  const result = await Promise.race([page.evaluate((b64) => window.tryVideo(b64), bytes.toString('base64')), hang]);
  clearTimeout(timer);
  if (result.outcome === 'hang') {
    // Where it stopped: a page stuck in a loop does not answer at all.
    const stage = await Promise.race([page.evaluate(() => window.__stage), new Promise((r) => setTimeout(() => r('busy: no answer'), 2000))]);
    result.stage = stage;
    await freshPage(); // the old page may still be spinning
  }
  return result;
}

/** Why `r` breaks the property, or null. */
function violation(r, mutated) {
  if (r.outcome === 'hang') return `no answer within ${PER_FILE_MS / 1000} s (stage: ${r.stage})`;
  if (r.outcome === 'error' && !NAMED.has(r.name)) return `unnamed error ${r.name}: ${r.message}`;
  if (r.outcome === 'bad-frames') return 'frames of the wrong size';
  if (!mutated && (r.outcome !== 'frames' || r.shown.join() !== r.want.join())) return `the intact clip gave ${JSON.stringify(r)}`;
  return null;
}

const tally = {};
let code = 1;
try {
  await freshPage();
  // Earlier failures first.
  const old = fs.existsSync(regressions) ? fs.readdirSync(regressions).sort() : [];
  for (const f of old) {
    const r = await tryFile(fs.readFileSync(path.join(regressions, f)));
    const why = violation(r, true);
    console.log(`${why ? 'FAIL' : 'ok  '} regression ${f}: ${r.outcome} ${r.name ?? ''} ${why ?? ''}`);
    if (why) throw new Error(`regression ${f}: ${why}`);
  }
  let last = null;
  const names = Object.keys(clips);
  const arb = fc.constantFrom(...names).chain((name) => fc.record({ name: fc.constant(name), mutations: fc.array(mutationArb(clips[name].marks), { maxLength: 4 }) }));
  const property = fc.asyncProperty(arb, async ({ name, mutations }) => {
    const bytes = apply(clips[name].bytes, mutations);
    const r = await tryFile(bytes);
    last = { name, mutations, bytes, r };
    const key = r.outcome === 'error' ? r.name : r.outcome;
    tally[key] = (tally[key] ?? 0) + 1;
    const why = violation(r, mutations.length > 0);
    if (why) {
      fs.writeFileSync(path.join(dir, `failure.${name}`), bytes);
      fs.writeFileSync(path.join(dir, 'failure.json'), JSON.stringify({ name, mutations, result: r }, null, 1));
    }
    if (why) throw new Error(why);
  });
  const out = await fc.check(property, { numRuns: runs, seed, endOnFailure: false });
  if (out.failed) {
    console.error(fc.defaultReportMessage(out));
    console.error(`the shrunk failing file: ${path.relative(root, dir)}/failure.${last?.name} (copy it to tests/fixtures/fuzz/video/ once fixed)`);
  } else {
    const shown = Object.entries(tally).sort().map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(`${runs} mutated files from ${names.length} clips (seed ${seed}): ${shown}; none hung, none gave an unnamed error`);
    code = 0;
  }
} catch (e) {
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser.close();
  server.close();
}
console.log(`video fuzz: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(code);
