/** How deeply a JSON document may nest arrays and objects: far beyond any legitimate request, far below what recursive readers (schema validators, Cedar, canonical forms) can take. */
export const maxJsonDepth = 64;

/**
 * The deepest nesting of arrays and objects in JSON text, found in one pass without parsing, so
 * a document too deep for the recursive code after `JSON.parse` is refused before it runs.
 */
export function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c)
        i += 1; // backslash: skip the escaped character
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) {
      depth += 1;
      if (depth > deepest) deepest = depth;
    } else if (ch === 0x5d || ch === 0x7d) depth -= 1;
  }
  return deepest;
}
