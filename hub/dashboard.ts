import { existsSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { fileURLToPath } from "node:url";
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import sirv from "sirv";

/**
 * The page may only load its own scripts, styles and workers and talk to
 * this hub, and no other site may frame it: stored data that slipped past
 * React's escaping still could not run or leak.
 */
const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'self'; script-src 'self'; worker-src 'self'; style-src 'self' 'unsafe-inline'; " +
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** dist/dashboard, seen from dist/hub (the built CLI) or from hub/ (sources, under vitest). */
export function dashboardDirectory(): string | undefined {
  for (const relative of ["../dashboard/", "../dist/dashboard/"]) {
    const directory = fileURLToPath(new URL(relative, import.meta.url));
    if (existsSync(`${directory}index.html`)) return directory;
  }
  return undefined;
}

type NodeHandler = ReturnType<typeof connectNodeAdapter>;

export type DashboardHandler = (
  request: Parameters<NodeHandler>[0],
  response: Parameters<NodeHandler>[1],
  notFound: () => void,
) => void;

/**
 * Serves the web dashboard's files (built by `npm run build` with Vite).
 * The file list is read once, so nothing outside it is ever served; hashed
 * assets are cached for good, index.html never.
 */
export function createDashboardHandler(): DashboardHandler {
  const directory = dashboardDirectory();
  if (!directory) {
    return (_request, response) => {
      response.writeHead(404, { "content-type": "text/plain" });
      response.end("the web dashboard is not built: run `npm run build` in the taskframe package\n");
    };
  }
  const serve = sirv(directory, {
    dev: false,
    etag: true,
    setHeaders(response, pathname) {
      for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
      response.setHeader(
        "cache-control",
        pathname.startsWith("/assets/") ? "public, max-age=31536000, immutable" : "no-cache",
      );
    },
  });
  // sirv uses only what HTTP/1.1 and the HTTP/2 compatibility API share (url, headers, writeHead, pipe)
  return (request, response, notFound) =>
    serve(request as IncomingMessage, response as unknown as ServerResponse, notFound);
}
