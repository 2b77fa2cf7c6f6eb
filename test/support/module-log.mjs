// A module hook (node:module `register`) that reports every resolved ES module URL to the port
// it is given: see loaded-packages.ts.
let port;

export function initialize(data) {
  port = data.port;
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  port.postMessage(resolved.url);
  return resolved;
}
