// A WASI 0.3 command in JavaScript, built into a component by componentize-qjs
// (QuickJS inside the component): `node examples/build.ts --js`, then
//   npx weir run examples/hello-js/hello-js.wasm Ada
import env from 'wasi:cli/environment@0.3.0';
import stdout from 'wasi:cli/stdout@0.3.0';

// QuickJS has no TextEncoder: UTF-8 by hand.
function utf8(s) {
  const b = unescape(encodeURIComponent(s));
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
  return out;
}

export const run = {
  async run() {
    const [, name = 'world'] = env.getArguments();
    // stdout takes a stream<u8>: hand it the readable end, write into the other one,
    // close it, and wait for stdout's result.
    const { readable, writable } = wit.Stream(wit.Stream.U8);
    const done = stdout.writeViaStream(readable);
    await writable.writeAll(utf8(`Hello, ${name}! (from JavaScript, WASI 0.3)\n`));
    writable.drop();
    const result = await done.read();
    if (result && result.tag === 'err') throw result.val;
  },
};
