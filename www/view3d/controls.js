// Pointer controls for the 3D view: drag orbits, right-drag / shift-drag / middle-drag pans, the
// wheel zooms, two fingers pinch-zoom and pan, a double click resets the view. Calls `changed()`
// after moving the camera. Returns a function that removes the listeners.

/** @param {HTMLCanvasElement} canvas @param {import('./camera.js').OrbitCamera} camera */
export function attachControls(canvas, camera, changed, reset) {
  const pointers = new Map(); // pointerId → {x, y}
  let mode = null; // 'orbit' | 'pan' for one pointer
  let pinch = null; // {distance, x, y} for two pointers
  canvas.style.touchAction = 'none';

  const height = () => canvas.clientHeight || canvas.height;
  const twoFinger = () => {
    const [a, b] = [...pointers.values()];
    return { distance: Math.hypot(a.x - b.x, a.y - b.y), x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
  };

  function down(e) {
    canvas.setPointerCapture?.(e.pointerId);
    pointers.set(e.pointerId, { x: e.clientX, y: e.clientY });
    if (pointers.size === 1) {
      mode = e.button === 2 || e.button === 1 || e.shiftKey ? 'pan' : 'orbit';
    } else if (pointers.size === 2) {
      mode = null;
      pinch = twoFinger();
    }
    e.preventDefault();
  }

  function move(e) {
    const p = pointers.get(e.pointerId);
    if (!p) return;
    const dx = e.clientX - p.x, dy = e.clientY - p.y;
    p.x = e.clientX;
    p.y = e.clientY;
    if (pointers.size === 1 && mode === 'orbit') camera.orbit(dx, dy, height());
    else if (pointers.size === 1 && mode === 'pan') camera.pan(dx, dy, height());
    else if (pointers.size === 2 && pinch) {
      const now = twoFinger();
      if (now.distance > 0 && pinch.distance > 0) camera.zoom(pinch.distance / now.distance);
      camera.pan(now.x - pinch.x, now.y - pinch.y, height());
      pinch = now;
    } else return;
    changed();
  }

  function up(e) {
    if (!pointers.delete(e.pointerId)) return;
    canvas.releasePointerCapture?.(e.pointerId);
    pinch = pointers.size === 2 ? twoFinger() : null;
    if (pointers.size === 0) mode = null;
    else if (pointers.size === 1) mode = 'orbit';
  }

  function wheel(e) {
    e.preventDefault();
    const lines = e.deltaMode === 1 ? 16 : e.deltaMode === 2 ? 400 : 1; // to pixels
    camera.zoom(Math.exp(Math.max(-100, Math.min(100, e.deltaY * lines)) * 0.002));
    changed();
  }

  function dblclick(e) {
    e.preventDefault();
    reset();
  }

  const noMenu = (e) => e.preventDefault();
  const listeners = [
    ['pointerdown', down], ['pointermove', move], ['pointerup', up], ['pointercancel', up],
    ['wheel', wheel, { passive: false }], ['dblclick', dblclick], ['contextmenu', noMenu],
  ];
  for (const [type, fn, opts] of listeners) canvas.addEventListener(type, fn, opts);
  return () => { for (const [type, fn, opts] of listeners) canvas.removeEventListener(type, fn, opts); };
}
