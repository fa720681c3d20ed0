// The app's video input (www/video/) in headless Chromium: test videos made here with ffmpeg (each
// frame shows its number as 8 black/white bars over a red | blue lower half) are opened and decoded
// by tests/browser/video.html, which checks metadata, that the RIGHT frame's pixels come back
// (also alone from the middle of a GOP, scaled, rotated), that sparse indices decode fewer chunks
// than the whole file, and each bad file's error name and message.
//   node tests/browser/video.mjs        (exit 0: all passed)
import { launch, executablePath } from './chromium.mjs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { serve } from '../../tools/static-server.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dir = path.join(root, 'target/test-videos');

/** lavfi source: `seconds` at 10 fps, w x h, frame n shows n's bits (bit 0 leftmost) above red | blue. */
function pattern(w, h, seconds) {
  const bars = "255*gt(bitand(N,pow(2,floor(X*8/W))),0)";
  return `color=c=black:s=${w}x${h}:r=10:d=${seconds},format=gbrp,`
    + `geq=r='if(lt(Y,H/2),${bars},255*lt(X,W/2))':g='if(lt(Y,H/2),${bars},0)':b='if(lt(Y,H/2),${bars},255*gte(X,W/2))',format=yuv420p`;
}
const vp8 = ['-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '800k'];
const vp9 = ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '800k'];
const h264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '18', '-bf', '2', '-pix_fmt', 'yuv420p'];
const av1 = ['-c:v', 'libsvtav1', '-preset', '12', '-crf', '30'];
const gop25 = ['-g', '25', '-keyint_min', '25', '-sc_threshold', '0'];

// The pattern is converted to YUV with BT.601 (ffmpeg's default); say so in every stream, as cameras
// do, so the browser converts back with the same matrix and colours can be checked tightly.
const bt601 = ['-colorspace', 'smpte170m', '-color_primaries', 'smpte170m', '-color_trc', 'smpte170m', '-color_range', 'tv'];

function ffmpeg(out, ...args) {
  // SVT_LOG=1: SVT-AV1 prints its banner past ffmpeg's -v unless told errors only.
  execFileSync('ffmpeg', ['-v', 'error', '-y', ...args, path.join(dir, out)], { stdio: 'inherit', env: { ...process.env, SVT_LOG: '1' } });
}
function lavfi(out, src, ...args) {
  ffmpeg(out, '-f', 'lavfi', '-i', src, ...args, ...(src.startsWith('color=') ? bt601 : []));
}
function truncate(from, to, fraction) {
  const b = fs.readFileSync(path.join(dir, from));
  fs.writeFileSync(path.join(dir, to), b.subarray(0, Math.floor(b.length * fraction)));
}

/** Copy an MP4 with its (single) track header's matrix set to a 90-degree clockwise turn, as phones write. */
function rotate90(from, to) {
  const b = fs.readFileSync(path.join(dir, from));
  const at = b.indexOf('tkhd');
  if (at < 0) throw new Error(`${from} has no tkhd`);
  const matrix = at + 8 + (b[at + 4] === 1 ? 32 : 20) + 16; // after version/flags, times, ids, layer/group/volume
  [0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000].forEach((v, i) => b.writeInt32BE(v, matrix + 4 * i));
  fs.writeFileSync(path.join(dir, to), b);
}

function makeVideos() {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  lavfi('vp8.webm', pattern(160, 120, 5), ...vp8);
  lavfi('vp9.webm', pattern(160, 120, 5), ...vp9);
  lavfi('h264.mp4', pattern(160, 120, 5), ...h264); // B-frames, 'moov' after 'mdat'
  lavfi('h264.mov', pattern(160, 120, 5), ...h264, '-f', 'mov');
  lavfi('av1.mp4', pattern(160, 120, 5), ...av1);
  lavfi('av1.webm', pattern(160, 120, 5), ...av1);
  lavfi('vp9.mp4', pattern(160, 120, 5), ...vp9);
  lavfi('gop25-vp9.webm', pattern(160, 120, 10), ...vp9, ...gop25);
  lavfi('gop25-h264.mp4', pattern(160, 120, 10), ...h264, ...gop25, '-movflags', '+faststart');
  lavfi('frag-h264.mp4', pattern(160, 120, 10), ...h264, ...gop25, '-movflags', 'frag_keyframe+empty_moov+default_base_moof');
  lavfi('portrait.webm', pattern(120, 160, 5), ...vp9);
  // Phone-style: stored landscape, shown turned 90 degrees clockwise (the tkhd matrix is written
  // here: ffmpeg's rotate tag has changed meaning and syntax between versions).
  rotate90('h264.mp4', 'rotated.mp4');
  // ffmpeg's own (auto-rotated) decode of its frame 0, to compare against.
  ffmpeg('rotated-frame0.rgba', '-i', path.join(dir, 'rotated.mp4'), '-frames:v', '1', '-f', 'rawvideo', '-pix_fmt', 'rgba');
  lavfi('hevc.mp4', pattern(160, 120, 2), '-c:v', 'libx265', '-preset', 'ultrafast', '-tag:v', 'hvc1', '-x265-params', 'log-level=error');
  lavfi('audio-only.mp4', 'sine=frequency=440:duration=1', '-c:a', 'aac');
  lavfi('audio-only.webm', 'sine=frequency=440:duration=1', '-c:a', 'libopus');
  fs.writeFileSync(path.join(dir, 'empty.mp4'), '');
  fs.writeFileSync(path.join(dir, 'text.mp4'), 'This is not a video, just a text file renamed to .mp4.\n'.repeat(20));
  truncate('h264.mp4', 'truncated.mp4', 0.6); // loses the 'moov' at the end
  truncate('gop25-h264.mp4', 'truncated-faststart.mp4', 0.6); // index complete, frames cut
  truncate('vp9.webm', 'truncated.webm', 0.6);
}

if (!fs.existsSync(executablePath)) {
  console.error(`FAILED: no Chromium at ${executablePath} (apt-get install chromium, or set CHROMIUM)`);
  process.exit(1);
}
const t0 = Date.now();
makeVideos();
console.log(`test videos in ${path.relative(root, dir)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);

const { server, url } = await serve(root);
const browser = await launch();
let code = 1;
try {
  const page = await browser.newPage();
  page.on('console', (m) => console.log(`[browser] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[browser error] ${e.message}`));
  await page.goto(`${url}/tests/browser/video.html`);
  await page.waitForFunction(() => window.__done === true, null, { timeout: 60_000, polling: 200 });
  const { results, error } = await page.evaluate(() => ({ results: window.__results, error: window.__error }));
  if (error) throw new Error(`the page failed: ${error}`);
  if (!results?.length) throw new Error('no checks ran');
  for (const r of results) console.log(`${r.ok ? 'ok  ' : 'FAIL'} ${r.name.padEnd(44)} ${r.detail}`);
  const failed = results.filter((r) => !r.ok);
  console.log(`${results.length - failed.length} passed, ${failed.length} failed`);
  code = failed.length ? 1 : 0;
} catch (e) {
  console.error(`FAILED: ${e.message}`);
} finally {
  await browser.close();
  server.close();
}
console.log(`video tests: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
process.exit(code);
