// Writing unsigned LEB128, for the few places Weir emits wasm bytes itself
// (clamped limits, the trap-on-grow-failure rewrite, JSPI trampolines).

/** Appends `v` (a non-negative integer below 2^53) as unsigned LEB128. */
export function pushLeb(out: number[], v: number): void {
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0) b |= 0x80;
    out.push(b);
  } while (v > 0);
}
