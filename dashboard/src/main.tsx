import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { TokenPrompt } from "./components/TokenPrompt.js";
import { HostsPage } from "./pages/HostsPage.js";
import { RunPage } from "./pages/RunPage.js";
import { RunsPage } from "./pages/RunsPage.js";
import { SchedulesPage } from "./pages/SchedulesPage.js";
import { StatsPage } from "./pages/StatsPage.js";
import { type Route, useRoute } from "./route.js";
import "./styles.css";

const NAV: [Route["page"], string, string][] = [
  ["runs", "#/", "Runs"],
  ["stats", "#/stats", "Analytics"],
  ["schedules", "#/schedules", "Schedules"],
  ["hosts", "#/hosts", "Hosts"],
];

function App() {
  const route = useRoute();
  const current = route.page === "run" ? "runs" : route.page;
  return (
    <>
      <nav className="top">
        <span className="brand">Taskframe</span>
        {NAV.map(([page, href, label]) => (
          <a key={page} href={href} aria-current={page === current ? "page" : undefined}>
            {label}
          </a>
        ))}
      </nav>
      <TokenPrompt />
      <main>
        {route.page === "run" ? (
          <RunPage key={route.runId} runId={route.runId} taskId={route.taskId} />
        ) : route.page === "stats" ? (
          <StatsPage />
        ) : route.page === "schedules" ? (
          <SchedulesPage />
        ) : route.page === "hosts" ? (
          <HostsPage />
        ) : (
          <RunsPage />
        )}
      </main>
    </>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
