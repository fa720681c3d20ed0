// Errors of the video module: plain Errors whose .name tells the app which message to show
// (UnsupportedCodec, UnsupportedContainer, CorruptVideo, NoWebCodecs).

export function videoError(name, message, cause) {
  const e = new Error(message, cause === undefined ? undefined : { cause });
  e.name = name;
  return e;
}

/** True for an error this module made on purpose (vs. a bug), so callers can rethrow others as CorruptVideo. */
export function isVideoError(e) {
  return e instanceof Error && ['UnsupportedCodec', 'UnsupportedContainer', 'CorruptVideo', 'NoWebCodecs'].includes(e.name);
}
