// The device the engine runs on, as a phrase a person can read ("SwiftShader (a CPU software
// renderer, slow): 16-bit floats not available, subgroups not available"), from what the engine
// negotiated (Engine.device_facts) and what the browser says of the adapter (GPUAdapterInfo: the
// engine's own view has only the description, empty in some browsers).

const VENDORS = { nvidia: 'NVIDIA', amd: 'AMD', ati: 'AMD', intel: 'Intel', apple: 'Apple', qualcomm: 'Qualcomm', arm: 'Arm', google: 'Google', microsoft: 'Microsoft', mesa: 'Mesa', 'img-tec': 'Imagination', samsung: 'Samsung', broadcom: 'Broadcom' };

const words = (s) => String(s ?? '').replace(/[-_]+/g, ' ').trim();
const mentions = (text, word) => word && text.toLowerCase().includes(word.toLowerCase());

/** The adapter's name: its description, else its vendor and architecture, else a plain "GPU". */
function adapterName(info, description) {
  const vendor = words(info.vendor);
  const vendorName = VENDORS[vendor.toLowerCase()] ?? vendor.replace(/^\w/, (c) => c.toUpperCase());
  const arch = words(info.architecture);
  const desc = words(description || info.description || info.device);
  if (/swiftshader/i.test(`${arch} ${desc}`)) return 'SwiftShader';
  if (desc) {
    const name = vendorName && !mentions(desc, vendorName) ? `${vendorName} ${desc}` : desc;
    return arch && !mentions(name, arch) ? `${name} (${arch} architecture)` : name;
  }
  if (vendorName || arch) return `${vendorName ? `${vendorName} ` : ''}GPU${arch ? ` (${arch} architecture)` : ''}`;
  return 'a GPU the browser does not name';
}

/** `facts`: {description, cpu, f16, subgroups, activations} from the engine; `info`: the
 * adapter's GPUAdapterInfo (or {}). */
export function deviceLine(facts, info = {}) {
  const name = adapterName(info ?? {}, facts.description);
  const cpu = facts.cpu || !!info?.isFallbackAdapter;
  const kind = !cpu ? '' : name === 'SwiftShader' ? ' (a CPU software renderer, slow)' : ' (a CPU adapter, not a GPU: slow)';
  const f16 = facts.f16 ? '16-bit floats available' : '16-bit floats not available (32-bit activations: more memory, slower)';
  const subgroups = facts.subgroups ? 'subgroups used' : 'subgroups not available';
  return `${name}${kind}: ${f16}, ${subgroups}`;
}

/** What the browser says of the adapter the engine asks for (the same preference), or {}. */
export async function adapterInfo() {
  try {
    const adapter = await navigator.gpu?.requestAdapter({ powerPreference: 'high-performance' });
    const i = adapter?.info ?? {};
    return { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description, isFallbackAdapter: i.isFallbackAdapter };
  } catch {
    return {};
  }
}
