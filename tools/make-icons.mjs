// Renders www/icons/icon.svg to the PNG sizes the web app manifest lists, with headless Chromium.
// The PNGs are committed; run this after changing the SVG: node tools/make-icons.mjs
import { launch } from '../tests/browser/chromium.mjs';
import fs from 'node:fs';

const svg = fs.readFileSync('www/icons/icon.svg', 'utf8');
const browser = await launch();
for (const size of [192, 512]) {
  const page = await browser.newPage({ viewport: { width: size, height: size } });
  await page.setContent(`<body style="margin:0">${svg.replace('<svg ', `<svg width="${size}" height="${size}" `)}</body>`);
  fs.writeFileSync(`www/icons/icon-${size}.png`, await page.screenshot({ omitBackground: true }));
  await page.close();
}
await browser.close();
console.log('wrote www/icons/icon-192.png and icon-512.png');
