import { FireOutcome, type Schedule } from "../../../core/gen/taskframe/v1/schedule_pb.js";
import { hub, millis } from "../api.js";
import { Problem } from "../components/Problem.js";
import { formatDuration, formatTime } from "../format.js";
import { runHref } from "../route.js";
import { RUN_STATE_NAMES } from "../states.js";
import { usePoll } from "../use-poll.js";

const listSchedules = (signal: AbortSignal) => hub.listSchedules({}, { signal });

/** Every schedule with its trigger, when it fires next and how its last firing went. */
export function SchedulesPage() {
  const { data, error } = usePoll(listSchedules, 5_000);
  const schedules = data?.schedules ?? [];
  return (
    <section className="page">
      <header className="page-header">
        <h1>Schedules</h1>
      </header>
      <Problem error={error} />
      <table className="compact">
        <thead>
          <tr>
            <th>schedule</th>
            <th>trigger</th>
            <th>next fire</th>
            <th>last fire</th>
            <th>last run</th>
            <th>source</th>
          </tr>
        </thead>
        <tbody>
          {schedules.map((schedule) => (
            <ScheduleRow key={schedule.spec?.name} schedule={schedule} />
          ))}
        </tbody>
      </table>
      {data && schedules.length === 0 ? (
        <p className="empty">No schedules: task schedule apply FILE adds one.</p>
      ) : null}
    </section>
  );
}

function ScheduleRow({ schedule }: { schedule: Schedule }) {
  const spec = schedule.spec;
  const trigger = spec?.trigger;
  const last = schedule.lastFire;
  return (
    <tr data-schedule={spec?.name}>
      <td>{spec?.name}</td>
      <td className="mono">
        {trigger?.case === "cron"
          ? `${trigger.value.expression} ${trigger.value.timezone || "UTC"}`
          : trigger?.case === "condition"
            ? `${trigger.value.task} every ${formatDuration(Number(trigger.value.intervalMs))}`
            : ""}
      </td>
      <td>
        {schedule.paused
          ? `paused${schedule.pausedReason ? `: ${schedule.pausedReason}` : ""}`
          : formatTime(millis(schedule.nextFireUnixMs)) || "—"}
      </td>
      <td>
        {last ? `${formatTime(millis(last.slotUnixMs))} ${FireOutcome[last.outcome].toLowerCase()}` : "—"}
      </td>
      <td>{last?.runId ? <a href={runHref(last.runId)}>{RUN_STATE_NAMES[last.runState]}</a> : "—"}</td>
      <td className="mono">{spec?.source}</td>
    </tr>
  );
}
