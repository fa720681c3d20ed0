// Headless Chromium with WebGPU on SwiftShader (flags in DESIGN.md), for the browser tests.
import { chromium } from 'playwright-core';

export const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const webgpuArgs = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--no-sandbox'];

export function launch() {
  return chromium.launch({ executablePath, headless: true, args: webgpuArgs });
}
