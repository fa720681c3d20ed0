// Helpers the browser tests share to compare what Cache Storage holds with the files on disk, and a
// seeded random generator for fault injection (the seed is printed so a failure can be replayed).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** {file: {size, sha}} of every file directly in `dir`. */
export function files(dir) {
  return Object.fromEntries(fs.readdirSync(dir).map((f) => {
    const bytes = fs.readFileSync(path.join(dir, f));
    return [f, { size: bytes.length, sha: crypto.createHash('sha256').update(bytes).digest('hex') }];
  }));
}

/** Throws unless `got` (as `files` gives it, or as hub.html's `__cached`) equals `want`, file by file. */
export function sameBytes(what, got, want) {
  const names = Object.keys(want).sort();
  if (JSON.stringify(Object.keys(got).sort()) !== JSON.stringify(names)) throw new Error(`${what}: cached files ${Object.keys(got).sort()} differ from the expected ${names}`);
  for (const n of names) {
    if (got[n].size !== want[n].size || got[n].sha !== want[n].sha) throw new Error(`${what}: ${n} differs (${got[n].size} B ${got[n].sha} vs ${want[n].size} B ${want[n].sha})`);
  }
  console.log(`${what}: ${names.length} files byte-identical`);
}

/** A seeded generator of numbers in [0, 1) (mulberry32). */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
