import { setFlagsFromString } from 'node:v8';

// Node 20's V8 aborts under load ("unreachable code" in
// Deoptimizer::DoComputeBuiltinContinuation) when TurboFan code with an inlined JS-to-Wasm call
// into cedar-wasm deoptimizes. Not inlining those calls removes the crash (3 of 3 clean
// 15 s load runs, against about 1 crash in 3 before) and costs nothing measurable.
// Imported first by the entry point, before any code is optimized.
setFlagsFromString('--no-turbo-inline-js-wasm-calls');
