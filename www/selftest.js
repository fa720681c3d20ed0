// Minimal page over the engine: report the WebGPU adapter and run the kernel self-test. It loads
// the test build of the engine (pkg-test/: the app's engine plus the kernel cases, feature
// `testing`), which the app itself never loads and the service worker does not precache.
import init, { gpu_facts, gpu_info, run_kernel_suite } from './pkg-test/spatial_mllm_web.js';
import { adapterInfo, deviceLine } from './engine/device-line.js';

const $ = (id) => document.getElementById(id);

async function main() {
  if (!navigator.gpu) {
    $('gpu').textContent = 'This browser has no WebGPU (navigator.gpu is missing). Use a recent Chrome or Edge, ' +
      'Safari 26+, or Firefox with WebGPU enabled.';
    return;
  }
  await init();
  try {
    // The sentence the app shows, then the engine's full summary for a bug report.
    $('gpu').textContent = deviceLine(await gpu_facts(), await adapterInfo());
    $('gpu-details').textContent = await gpu_info();
    $('gpu-details').hidden = false;
  } catch (e) {
    $('gpu').textContent = `No usable WebGPU adapter: ${e}`;
    return;
  }
  $('run').disabled = false;
  $('run').onclick = async () => {
    $('run').disabled = true;
    $('status').textContent = 'running…';
    try {
      const report = JSON.parse(await run_kernel_suite('', Math.floor(Math.random() * 2 ** 31)));
      const body = $('results').querySelector('tbody');
      body.replaceChildren();
      for (const r of report.results) {
        const tr = document.createElement('tr');
        for (const [text, cls] of [[r.name], [r.ok ? 'pass' : 'FAIL', r.ok ? 'ok' : 'fail'], [Math.round(r.ms)], [r.detail]]) {
          const td = document.createElement('td');
          td.textContent = text;
          if (cls) td.className = cls;
          tr.append(td);
        }
        body.append(tr);
      }
      $('results').hidden = false;
      const failed = report.results.filter((r) => !r.ok).length;
      $('status').textContent = `${report.results.length - failed} passed, ${failed} failed (${report.path} path)`;
    } catch (e) {
      $('status').textContent = `The self-test could not run: ${e}`;
    } finally {
      $('run').disabled = false;
    }
  };
}
main();
