import { useEffect, useState } from "react";

export type Route =
  | { page: "runs" }
  | { page: "run"; runId: string; taskId?: string }
  | { page: "stats" }
  | { page: "schedules" }
  | { page: "hosts" };

/** Pages live in the URL's hash (`#/runs/ID/tasks/ID`), so a link can be shared and the hub serves one file. */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] === "runs" && parts[1]) return { page: "run", runId: parts[1], taskId: parts[3] };
  if (parts[0] === "stats" || parts[0] === "schedules" || parts[0] === "hosts") return { page: parts[0] };
  return { page: "runs" };
}

export const runHref = (runId: string, taskId?: string): string =>
  `#/runs/${encodeURIComponent(runId)}${taskId ? `/tasks/${encodeURIComponent(taskId)}` : ""}`;

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const changed = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", changed);
    return () => window.removeEventListener("hashchange", changed);
  }, []);
  return route;
}
