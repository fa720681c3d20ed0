// Renders www/icons/icon.svg to the PNG sizes the web app manifest lists, with headless Chromium.
// The PNGs are committed; run this after changing the SVG: node tools/make-icons.mjs
// (`--extension`: only the browser extension's toolbar and store sizes, into extension/icons/).
import { launch } from '../tests/browser/chromium.mjs';
import fs from 'node:fs';

const svg = fs.readFileSync('www/icons/icon.svg', 'utf8');
const extension = process.argv.includes('--extension');
const [dir, sizes] = extension ? ['extension/icons', [16, 32, 48, 128]] : ['www/icons', [192, 512]];
fs.mkdirSync(dir, { recursive: true });
const browser = await launch();
for (const size of sizes) {
  const page = await browser.newPage({ viewport: { width: size, height: size } });
  await page.setContent(`<body style="margin:0">${svg.replace('<svg ', `<svg width="${size}" height="${size}" `)}</body>`);
  fs.writeFileSync(`${dir}/icon-${size}.png`, await page.screenshot({ omitBackground: true }));
  await page.close();
}
await browser.close();
console.log(`wrote ${sizes.map((s) => `${dir}/icon-${s}.png`).join(', ')}`);
