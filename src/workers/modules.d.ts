// Module kinds wrangler bundles (see the [[rules]] of wrangler.toml).
declare module '*.cedar' {
  const text: string;
  // eslint-disable-next-line no-restricted-syntax
  export default text;
}
declare module '*.cedarschema' {
  const text: string;
  // eslint-disable-next-line no-restricted-syntax
  export default text;
}
declare module '*.wasm' {
  const module: WebAssembly.Module;
  // eslint-disable-next-line no-restricted-syntax
  export default module;
}
