// Headless Chromium with WebGPU on SwiftShader (flags in DESIGN.md), for the browser tests.
import { chromium } from 'playwright-core';

export const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
export const webgpuArgs = ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader', '--enable-features=Vulkan', '--no-sandbox'];

// A WebGPU canvas (the app's 3D view) also needs Vulkan and ANGLE on SwiftShader: without them the
// first frame presented to a canvas loses the device ("Could not find SharedImageBackingFactory").
export const canvasArgs = ['--use-vulkan=swiftshader', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];

export function launch({ canvas = false } = {}) {
  return chromium.launch({ executablePath, headless: true, args: canvas ? [...webgpuArgs, ...canvasArgs] : webgpuArgs });
}
