// Headless Chromium with WebGPU on SwiftShader (flags in DESIGN.md), for the browser tests.
import { chromium } from 'playwright-core';
import { serve } from '../../tools/static-server.mjs';

export const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const webgpuArgs = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--no-sandbox'];

// A WebGPU canvas (the app's 3D view) also needs Vulkan and ANGLE on SwiftShader: without them the
// first frame presented to a canvas loses the device ("Could not find SharedImageBackingFactory").
export const canvasArgs = ['--use-vulkan=swiftshader', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];

export function launch({ canvas = false } = {}) {
  return chromium.launch({ executablePath, headless: true, args: canvas ? [...webgpuArgs, ...canvasArgs] : webgpuArgs });
}

// The frame of a browser test: serves the checkout at `root`, starts Chromium (`canvas`: with the
// flags a WebGPU canvas needs) and runs `body({ browser, server, url, requests, faults })`. An
// error thrown there fails the test with its message. Both are closed either way, and the process
// exits 0 if `body` returned, 1 if it threw.
export async function browserTest(root, body, { canvas = false } = {}) {
  const served = await serve(root);
  const browser = await launch({ canvas });
  let code = 1;
  try {
    await body({ browser, ...served });
    code = 0;
  } catch (e) {
    console.error(`FAILED: ${e.message}`);
  } finally {
    await browser.close();
    served.server.close();
  }
  process.exit(code);
}

// A new page whose console lines are echoed here, marked [browser].
export async function echoingPage(browser, options) {
  const page = await browser.newPage(options);
  page.on('console', (m) => console.log(`[browser] ${m.text()}`));
  return page;
}
