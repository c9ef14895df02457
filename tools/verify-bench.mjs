// Runs the wasm32-wasip1 build of filter/examples/verify_bench.rs under node's V8 (WASI
// preview 1). The module links the filter crate, whose proxy-wasm host imports (`env.proxy_*`)
// the benchmark never calls: they are bound to functions that fail loudly if it ever did.
import { readFile } from 'node:fs/promises';
import { WASI } from 'node:wasi';
import { argv } from 'node:process';

const wasi = new WASI({ version: 'preview1', args: ['verify_bench', ...argv.slice(3)], env: {} });
const imports = wasi.getImportObject();
imports.env = new Proxy({}, {
  get: (_, name) => () => { throw new Error(`host call ${String(name)} in a benchmark`); },
});
const module = await WebAssembly.compile(await readFile(argv[2]));
const instance = await WebAssembly.instantiate(module, imports);
// The filter crate exports `_initialize` (a reactor entry for Envoy); the benchmark is a command.
wasi.start({ exports: { memory: instance.exports.memory, _start: instance.exports._start } });
