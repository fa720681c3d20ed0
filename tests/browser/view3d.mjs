// The 3D view (www/view3d/) in headless Chromium on SwiftShader's WebGPU: a synthetic room of 50k
// points with 16 cameras, 4 of them picked (tests/browser/view3d.html). Checks, from screenshots of
// the canvas: the image is not blank, the red wall and the picked frustums' highlight colour show,
// highlightFrame shows its own colour and dims other frames' points, orbit / pan / zoom change the
// image and resetView restores it; a resize follows the canvas; a lost device is recreated and
// reported; devicePixelRatio 2 doubles the drawing buffer; bad scenes are refused; create()
// without WebGPU rejects with a clear error. Saves the first screenshot to target/view3d.png (and
// target/view3d-{focused,orbited}.png). Under a minute.
import { browserTest } from './chromium.mjs';
import path from 'node:path';
import fs from 'node:fs';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const fail = (msg) => { throw new Error(msg); };

/** Decodes an 8-bit RGB / RGBA PNG (what Chromium writes) to {width, height, rgba}. */
function decodePng(buf) {
  if (buf.readUInt32BE(0) !== 0x89504e47) fail('not a PNG');
  let off = 8, width = 0, height = 0, type = 0;
  const idat = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off), kind = buf.toString('latin1', off + 4, off + 8), data = buf.subarray(off + 8, off + 8 + len);
    if (kind === 'IHDR') {
      width = data.readUInt32BE(0); height = data.readUInt32BE(4);
      if (data[8] !== 8 || (data[9] !== 2 && data[9] !== 6) || data[12] !== 0) fail(`unsupported PNG (depth ${data[8]}, type ${data[9]})`);
      type = data[9];
    } else if (kind === 'IDAT') idat.push(data);
    else if (kind === 'IEND') break;
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const bpp = type === 6 ? 4 : 3, stride = width * bpp;
  const px = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? px[y * stride + x - bpp] : 0, b = y > 0 ? px[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y > 0 ? px[(y - 1) * stride + x - bpp] : 0;
      let p;
      if (filter === 0) p = 0;
      else if (filter === 1) p = a;
      else if (filter === 2) p = b;
      else if (filter === 3) p = (a + b) >> 1;
      else if (filter === 4) { const q = a + b - c, pa = Math.abs(q - a), pb = Math.abs(q - b), pc = Math.abs(q - c); p = pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      else fail(`bad PNG filter ${filter}`);
      px[y * stride + x] = (line[x] + p) & 255;
    }
  }
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(px.subarray(i * bpp, i * bpp + 3), i * 4);
    rgba[i * 4 + 3] = bpp === 4 ? px[i * bpp + 3] : 255;
  }
  return { width, height, rgba };
}

/** Pixel statistics: fraction off the background, distinct colours, counts of pixels near given colours. */
function stats(img, background, named) {
  const n = img.width * img.height, seen = new Set(), counts = Object.fromEntries(Object.keys(named).map((k) => [k, 0]));
  let off = 0;
  for (let i = 0; i < n; i++) {
    const r = img.rgba[i * 4], g = img.rgba[i * 4 + 1], b = img.rgba[i * 4 + 2];
    seen.add((r << 16) | (g << 8) | b);
    if (Math.abs(r - background[0]) + Math.abs(g - background[1]) + Math.abs(b - background[2]) > 24) off++;
    for (const [k, test] of Object.entries(named)) if (test(r, g, b)) counts[k]++;
  }
  return { nonBackground: off / n, distinct: seen.size, ...counts };
}

/** Fraction of pixels that differ by more than a little between two images of one size. */
function changed(a, b) {
  if (a.width !== b.width || a.height !== b.height) return 1;
  let d = 0;
  for (let i = 0; i < a.width * a.height; i++) {
    const e = Math.abs(a.rgba[i * 4] - b.rgba[i * 4]) + Math.abs(a.rgba[i * 4 + 1] - b.rgba[i * 4 + 1]) + Math.abs(a.rgba[i * 4 + 2] - b.rgba[i * 4 + 2]);
    if (e > 30) d++;
  }
  return d / (a.width * a.height);
}

const near = (c, tol) => (r, g, b) => Math.abs(r - c[0]) + Math.abs(g - c[1]) + Math.abs(b - c[2]) <= tol;
const NAMED = {
  red: (r, g, b) => r > 150 && g < 80 && b < 80, // the left wall
  highlight: near([255, 176, 0], 60), // picked frames' frustums
  focused: near([0, 230, 255], 60), // highlightFrame's frustum
};
const BACKGROUND = [18, 20, 26]; // opts.background [0.07, 0.08, 0.1] in 8 bits

await browserTest(root, async ({ browser, url }) => {
  const page = await browser.newPage({ viewport: { width: 640, height: 480 }, deviceScaleFactor: 1 });
  page.on('console', (m) => console.log(`[browser] ${m.text()}`));
  page.on('pageerror', (e) => console.log(`[browser error] ${e.message}`));
  await page.goto(`${url}/tests/browser/view3d.html`);
  await page.waitForFunction(() => window.__done === true, null, { timeout: 30_000, polling: 100 });
  const setupError = await page.evaluate(() => window.__error);
  if (setupError) fail(`setup: ${setupError}`);
  const canvas = page.locator('#view');
  fs.mkdirSync(path.join(root, 'target'), { recursive: true });
  const shot = async (save) => {
    await page.evaluate(() => window.t.view.rendered());
    const png = await canvas.screenshot();
    if (save) fs.writeFileSync(path.join(root, 'target', save), png);
    return decodePng(png);
  };
  const check = (what, ok, detail) => { console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}: ${detail}`); if (!ok) fail(what); };

  // The first view: points, their colours and the picked frustums.
  const size = await page.evaluate(() => [window.t.canvas.width, window.t.canvas.height]);
  check('drawing buffer follows the canvas size', size[0] === 400 && size[1] === 300, size.join('x'));
  const first = await shot('view3d.png');
  const s0 = stats(first, BACKGROUND, NAMED);
  console.log(`first view ${first.width}x${first.height}: ${JSON.stringify(s0)}`);
  check('not blank', s0.nonBackground > 0.25 && s0.distinct > 500, `${(s0.nonBackground * 100).toFixed(1)}% off the background, ${s0.distinct} colours`);
  check('the red wall shows', s0.red > 0.03 * first.width * first.height, `${s0.red} red pixels`);
  check('the picked frustums show in the highlight colour', s0.highlight > 150, `${s0.highlight} highlight pixels`);
  check('no focused frustum before highlightFrame', s0.focused < 20, `${s0.focused} focused-colour pixels`);

  // highlightFrame: its frustum in the focus colour, other frames' points dimmed (frame 4 looks at the
  // green wall, so the red one dims).
  await page.evaluate(() => window.t.view.highlightFrame(4));
  const focused = stats(await shot('view3d-focused.png'), BACKGROUND, NAMED);
  check('highlightFrame shows its frustum', focused.focused > 50, `${focused.focused} focused-colour pixels`);
  check('highlightFrame dims other frames\' points', focused.red < s0.red * 0.6, `${focused.red} red pixels (was ${s0.red})`);
  await page.evaluate(() => window.t.view.highlightFrame(null));
  const cleared = await shot();
  check('highlightFrame(null) restores the view', changed(first, cleared) < 0.01, `${(changed(first, cleared) * 100).toFixed(2)}% pixels changed`);

  // Orbit (drag), pan (right-drag and shift-drag), zoom (wheel), each changes the image; resetView undoes them.
  const box = await canvas.boundingBox();
  const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
  const drag = async (dx, dy, opts = {}) => {
    await page.mouse.move(cx, cy);
    await page.mouse.down(opts);
    await page.mouse.move(cx + dx, cy + dy, { steps: 2 });
    await page.mouse.up(opts);
  };
  await drag(120, 30);
  const orbited = await shot('view3d-orbited.png');
  check('orbiting changes the image', changed(first, orbited) > 0.2, `${(changed(first, orbited) * 100).toFixed(1)}% pixels changed`);
  await page.evaluate(() => window.t.view.resetView());
  const reset = await shot();
  check('resetView restores the first view', changed(first, reset) < 0.01, `${(changed(first, reset) * 100).toFixed(2)}% pixels changed`);
  await drag(60, 0, { button: 'right' });
  const panned = await shot();
  check('right-drag pans', changed(first, panned) > 0.2, `${(changed(first, panned) * 100).toFixed(1)}% pixels changed`);
  await page.evaluate(() => window.t.view.resetView());
  await page.keyboard.down('Shift');
  await drag(0, 50);
  await page.keyboard.up('Shift');
  const shiftPanned = await shot();
  check('shift-drag pans', changed(first, shiftPanned) > 0.2, `${(changed(first, shiftPanned) * 100).toFixed(1)}% pixels changed`);
  await page.evaluate(() => window.t.view.resetView());
  await page.mouse.move(cx, cy);
  await page.mouse.wheel(0, -300);
  const zoomed = await shot();
  const sz = stats(zoomed, BACKGROUND, NAMED);
  check('the wheel zooms in', changed(first, zoomed) > 0.2 && sz.nonBackground > s0.nonBackground, `${(changed(first, zoomed) * 100).toFixed(1)}% pixels changed, ${(sz.nonBackground * 100).toFixed(1)}% off the background`);
  await page.evaluate(() => window.t.view.resetView());

  // Resize: the drawing buffer follows the CSS size and the view still draws.
  await page.evaluate(() => { window.t.canvas.style.width = '200px'; window.t.canvas.style.height = '150px'; });
  await page.waitForFunction(() => window.t.canvas.width === 200 && window.t.canvas.height === 150, null, { timeout: 5000 });
  const small = await shot();
  const ss = stats(small, BACKGROUND, NAMED);
  check('a resized canvas draws at its new size', small.width === 200 && ss.nonBackground > 0.25 && ss.red > 0, `${small.width}x${small.height}, ${(ss.nonBackground * 100).toFixed(1)}% off the background`);
  await page.evaluate(() => { window.t.canvas.style.width = '400px'; window.t.canvas.style.height = '300px'; });
  await page.waitForFunction(() => window.t.canvas.width === 400, null, { timeout: 5000 });

  // Device loss: reported through onError, a new device, the scene drawn again.
  const lost = await page.evaluate(async () => {
    const { view, errors } = window.t;
    const old = view.device;
    old.destroy();
    const t0 = performance.now();
    while ((view.device === old || view.device === null) && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 20));
    return { recreated: view.device !== null && view.device !== old, errors: [...errors] };
  });
  check('a lost device is reported', lost.errors.some((e) => /device was lost/.test(e)), JSON.stringify(lost.errors));
  check('a lost device is recreated', lost.recreated, String(lost.recreated));
  const again = await shot();
  check('the scene is drawn again on the new device', changed(first, again) < 0.01, `${(changed(first, again) * 100).toFixed(2)}% pixels changed`);

  // Bad scenes are refused with a clear error.
  const refused = await page.evaluate(() => {
    const { view } = window.t;
    const tries = [
      { points: new Float32Array(4), colors: new Uint8Array(0), cameras: new Float32Array(0), selected: [] },
      { points: new Float32Array(6), colors: new Uint8Array(3), cameras: new Float32Array(0), selected: [] },
      { points: new Float32Array(3), colors: new Uint8Array(3), cameras: new Float32Array(5), selected: [] },
    ];
    return tries.map((s) => { try { view.setScene(s); return null; } catch (e) { return e.message; } });
  });
  check('bad scenes are refused', refused.every((m) => typeof m === 'string' && /setScene/.test(m)), JSON.stringify(refused));

  // An empty scene and destroy() are fine; using a destroyed view throws.
  const afterDestroy = await page.evaluate(async () => {
    const { view } = window.t;
    view.setScene({ points: new Float32Array(0), colors: new Uint8Array(0), cameras: new Float32Array(0), selected: [] });
    await view.rendered();
    view.destroy();
    try { view.resetView(); return null; } catch (e) { return e.message; }
  });
  check('an empty scene draws and a destroyed view refuses calls', /destroyed/.test(afterDestroy ?? ''), String(afterDestroy));
  const errors = await page.evaluate(() => window.t.errors.filter((e) => !/device was lost/.test(e)));
  check('no GPU errors were reported', errors.length === 0, JSON.stringify(errors));

  // devicePixelRatio 2: a drawing buffer of twice the CSS size.
  const hidpi = await browser.newPage({ viewport: { width: 640, height: 480 }, deviceScaleFactor: 2 });
  await hidpi.goto(`${url}/tests/browser/view3d.html`);
  await hidpi.waitForFunction(() => window.__done === true, null, { timeout: 30_000, polling: 100 });
  const hiSize = await hidpi.evaluate(() => window.__error ?? [window.t.canvas.width, window.t.canvas.height].join('x'));
  check('devicePixelRatio 2 doubles the drawing buffer', hiSize === '800x600', hiSize);
  await hidpi.close();

  // Without WebGPU, create() rejects with a clear error.
  const bare = await browser.newPage();
  await bare.addInitScript(() => { delete Navigator.prototype.gpu; });
  await bare.goto(`${url}/tests/browser/view3d.html`);
  await bare.waitForFunction(() => window.__done === true, null, { timeout: 30_000, polling: 100 });
  const noGpu = await bare.evaluate(() => window.__error ?? null);
  check('create() without WebGPU gives a clear error', /WebGPU is not available/.test(noGpu ?? ''), String(noGpu).split('\n')[0]);
  await bare.close();

  console.log('view3d: all checks passed (screenshot in target/view3d.png)');
}, { canvas: true });
