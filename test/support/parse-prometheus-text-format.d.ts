declare module 'parse-prometheus-text-format' {
  /** Parses Prometheus text exposition into metric families (the package's only export). */
  // eslint-disable-next-line no-restricted-syntax
  export default function parse(text: string): unknown[];
}
