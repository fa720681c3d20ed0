// Host access the extension asks for at run time (all optional: `optional_host_permissions` in the
// manifest), one origin at a time and only on the user's click: the Hugging Face hosts (or a hub
// mirror's origin) when a hub model is loaded, and the origin of a cross-origin frame that holds a
// page's video when the user asks for it to be listed.

/** The Hugging Face hub's hosts (a model's files, and the LFS blobs it redirects to). */
export const HF_HOSTS = ['https://huggingface.co/*', 'https://*.huggingface.co/*', 'https://*.hf.co/*'];

/** The host permission pattern for one origin (its port included): `http://host:port/*`. */
export function originPattern(url) {
  const u = new URL(url);
  return `${u.protocol}//${u.host}/*`;
}

/** Whether the extension may read pages of `origin` now. */
export const hasHost = (origin) => chrome.permissions.contains({ origins: [originPattern(origin)] }).catch(() => false);

/** Asks the user for access to `origin` (must run inside a click: a permission request needs the
 * user's gesture); resolves to whether it was granted. */
export const askHost = (origin) => chrome.permissions.request({ origins: [originPattern(origin)] }).catch(() => false);
