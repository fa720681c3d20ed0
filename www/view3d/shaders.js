// WGSL for the 3D view: points as instanced screen-space quads, line segments as instanced
// screen-space quads (so they can be thicker than WebGPU's 1-pixel lines). Both share one uniform
// block (UNIFORM_BYTES) and one bind group layout.

const uniforms = /* wgsl */ `
struct U {
  viewProj: mat4x4f,
  background: vec4f,
  viewport: vec2f,  // drawing buffer size in pixels
  pointSize: f32,   // point side in pixels
  highlight: i32,   // frame whose points stay bright, -1 = all bright
};
@group(0) @binding(0) var<uniform> u: U;

// Corner i of a quad drawn as a 4-vertex triangle strip: (-1,-1) (1,-1) (-1,1) (1,1).
fn corner(i: u32) -> vec2f {
  return vec2f(f32(i & 1u) * 2.0 - 1.0, f32(i >> 1u) * 2.0 - 1.0);
}
`;

/** Byte size of struct U (64 + 16 + 8 + 4 + 4). */
export const UNIFORM_BYTES = 96;

/** Points: per instance position (float32x3), colour (unorm8x4), frame (uint32). */
export const POINTS_WGSL = uniforms + /* wgsl */ `
struct Out {
  @builtin(position) pos: vec4f,
  @location(0) color: vec3f,
};

@vertex
fn vs(@builtin(vertex_index) vi: u32, @location(0) p: vec3f, @location(1) c: vec4f,
      @location(2) frame: u32) -> Out {
  var o: Out;
  var size = u.pointSize;
  var color = c.rgb;
  if (u.highlight >= 0 && frame != u32(u.highlight)) {
    color = mix(color, u.background.rgb, 0.8);
    size = max(1.0, size * 0.75);
  }
  let clip = u.viewProj * vec4f(p, 1.0);
  // Half a side of \`size\` pixels in NDC is size / viewport; scale by w to undo the divide.
  o.pos = vec4f(clip.xy + corner(vi) * size / u.viewport * clip.w, clip.zw);
  o.color = color;
  return o;
}

@fragment
fn fs(i: Out) -> @location(0) vec4f {
  return vec4f(i.color, 1.0);
}
`;

/** Segments: per instance endpoints a, b (float32x3), colour (unorm8x4), width in pixels (float32). */
export const LINES_WGSL = uniforms + /* wgsl */ `
struct Out {
  @builtin(position) pos: vec4f,
  @location(0) color: vec4f,
};

@vertex
fn vs(@builtin(vertex_index) vi: u32, @location(0) a: vec3f, @location(1) b: vec3f,
      @location(2) color: vec4f, @location(3) width: f32) -> Out {
  var o: Out;
  var ca = u.viewProj * vec4f(a, 1.0);
  var cb = u.viewProj * vec4f(b, 1.0);
  // Clip the segment to the near plane (z >= 0) so the screen direction stays meaningful.
  if (ca.z < 0.0 && cb.z < 0.0) {
    o.pos = vec4f(2.0, 2.0, 2.0, 1.0); // outside the clip volume: the quad is dropped
    o.color = color;
    return o;
  }
  if (ca.z < 0.0) { ca = mix(ca, cb, ca.z / (ca.z - cb.z)); }
  if (cb.z < 0.0) { cb = mix(cb, ca, cb.z / (cb.z - ca.z)); }
  let half = u.viewport * 0.5;
  let sa = ca.xy / ca.w * half;
  let sb = cb.xy / cb.w * half;
  var dir = vec2f(1.0, 0.0);
  if (distance(sa, sb) > 1e-4) { dir = normalize(sb - sa); }
  let normal = vec2f(-dir.y, dir.x);
  let c = corner(vi);
  var p = ca;
  if (c.y > 0.0) { p = cb; }
  // Offset in pixels: across by the width, along by half the width past each end (square caps).
  let px = (normal * c.x + dir * c.y) * (width * 0.5);
  o.pos = vec4f(p.xy + px / half * p.w, p.zw);
  o.color = color;
  return o;
}

@fragment
fn fs(i: Out) -> @location(0) vec4f {
  return i.color;
}
`;
