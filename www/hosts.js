// The model hosts this page may connect to (its Content-Security-Policy's connect-src, csp.js):
// the list the user chose (Hugging Face by default), the "Hosts this page may connect to" panel,
// and the question asked before a model from a host outside the list is used. A policy can only
// be widened by loading the page again: adding a host saves the list where the service worker
// reads it (sw.js builds the policy of every page it serves from it) and reloads.
import './csp.js';
import { $, el } from './ui.js';
import { hubSettings, HUB_DEFAULT } from './models.js';

const { DEFAULT_HOSTS, hostSource, allows, hostsOf, storedHosts, saveHosts } = globalThis.AppCsp;
const BASE = new URL('./', import.meta.url).href;

/** The hosts the policy in force allows (the meta tag the service worker wrote, or the default). */
export function hostsInForce() {
  const meta = document.querySelector('meta[http-equiv="Content-Security-Policy"]');
  return meta ? hostsOf(meta.content) : DEFAULT_HOSTS.slice();
}

/** Whether a new list can take effect: only pages the service worker serves get the chosen list. */
const canWiden = () => !!navigator.serviceWorker?.controller;

/** The origins `entry` (models.js / catalogue.js) connects to that the policy in force does not
 * allow, as host sources. A `?hub=` address counts as chosen: the service worker allows it. */
export function missingHosts(entry) {
  const hub = hubSettings();
  const inForce = hostsInForce();
  // Hugging Face needs its download hosts too (the default set).
  if (entry.hub && !hub.fromUrl && hub.endpoint === HUB_DEFAULT) return DEFAULT_HOSTS.filter((h) => !inForce.includes(h));
  const urls = entry.hub ? (hub.fromUrl ? [] : [hub.endpoint]) : [entry.model, entry.sampler];
  const out = [];
  for (const u of urls.filter(Boolean)) {
    const url = new URL(u, location.href);
    if (url.origin === location.origin || allows(inForce, url)) continue;
    const src = hostSource(url.origin);
    if (src && !out.includes(src)) out.push(src);
  }
  return out;
}

async function allowAndReload(sources) {
  await saveHosts(BASE, [...(await storedHosts(BASE)), ...sources]);
  location.reload();
}

/** The check's card for a model on hosts outside the list: what and why, and the button. */
export function hostCard(missing) {
  const nodes = [el('div', {}, `This model is downloaded from ${missing.join(' and ')}, which this page may not connect to yet: it connects only to this site and the model hosts you allowed.`)];
  if (canWiden()) {
    const b = el('button', { type: 'button' }, `Allow ${missing.join(' and ')} and reload`);
    b.onclick = () => allowAndReload(missing);
    nodes.push(el('div', {}, b));
  } else {
    nodes.push(el('div', { className: 'muted' }, 'This page is not served by the app\'s service worker (a private window, or ?nosw in the address), so it cannot allow more hosts: open the app normally and try again.'));
  }
  return nodes;
}

/** The panel: the hosts in force, each removable, and a field to add one. */
export async function wireHostsPanel() {
  navigator.serviceWorker?.addEventListener('controllerchange', () => renderHostsPanel(), { once: true });
  await renderHostsPanel();
}

async function renderHostsPanel() {
  const stored = await storedHosts(BASE);
  const inForce = hostsInForce();
  const note = $('hosts-note');
  const fromAddress = hubSettings().fromUrl ? hostSource(new URL(hubSettings().endpoint).origin) : null;
  $('hosts-list').replaceChildren(...inForce.map((h) => {
    const li = el('li', {}, el('code', {}, h), ' ');
    if (stored.includes(h) && canWiden()) {
      const rm = el('button', { type: 'button' }, 'Remove');
      rm.onclick = async () => { await saveHosts(BASE, stored.filter((s) => s !== h)); location.reload(); };
      li.append(rm);
    } else if (h === fromAddress && !stored.includes(h)) {
      li.append(el('span', { className: 'muted' }, '(set by this page\'s address)'));
    }
    return li;
  }));
  if (!inForce.length) $('hosts-list').append(el('li', { className: 'muted' }, 'none: only this site'));
  $('host-add-button').disabled = !canWiden();
  note.textContent = canWiden() ? '' : 'This page is not served by the app\'s service worker, so the list cannot change here.';
  $('host-add-button').onclick = () => {
    const src = hostSource($('host-add').value);
    if (!src) {
      note.textContent = 'Not a host: type an address such as https://models.example.org (https://*.example.org for all its subdomains).';
      return;
    }
    allowAndReload([src]);
  };
}
