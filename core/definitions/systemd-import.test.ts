import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { DefinitionError, DefinitionErrors } from "../errors.js";
import { CatchUpPolicy } from "../gen/taskframe/v1/schedule_pb.js";
import { loadSchedules } from "./schedules.js";
import { calendarToCron, calendarToSchedule } from "./systemd-calendar.js";
import { everyAsCron, importSystemd } from "./systemd-import.js";
import { formatTimeSpan, parseTimeSpanMs } from "./systemd-time.js";
import { loadUnitRun } from "./units/index.js";

const unit = (...lines: string[]): string => `${lines.join("\n")}\n`;
const SERVICE = "/etc/systemd/system/backup.service";
const TIMER = "/etc/systemd/system/backup.timer";

function problemsOf(service: string, timer?: string): string[] {
  try {
    importSystemd(
      { file: SERVICE, text: service },
      timer === undefined ? undefined : { file: TIMER, text: timer },
    );
  } catch (error) {
    if (error instanceof DefinitionErrors) return error.problems.map((problem) => problem.message);
    if (error instanceof DefinitionError) return [error.message];
    throw error;
  }
  throw new Error("expected the import to fail");
}

describe("calendarToCron", () => {
  it.each([
    ["minutely", "* * * * *"],
    ["hourly", "0 * * * *"],
    ["daily", "0 0 * * *"],
    ["weekly", "0 0 * * 1"],
    ["monthly", "0 0 1 * *"],
    ["yearly", "0 0 1 1 *"],
    ["*-*-* 02:00:00", "0 2 * * *"],
    ["Mon..Fri *-*-* 09:00", "0 9 * * 1-5"],
    ["Sat,Sun 10:30", "30 10 * * 6,0"],
    ["Fri..Mon *-*-* 23:00", "0 23 * * 5-6,0-1"],
    ["*-*-01 04:15:00", "15 4 1 * *"],
    ["*-01,07-01 00:00", "0 0 1 1,7 *"],
    ["*:0/15", "*/15 * * * *"],
    ["*:5/20", "5-59/20 * * * *"],
    ["08..18:00", "0 8-18 * * *"],
    ["*-*-* *:*:00", "* * * * *"],
  ])("%s -> %s", (calendar, cron) => {
    expect(calendarToCron(calendar)).toBe(cron);
  });

  it.each([
    ["2026-*-* 00:00", "a year (2026) has no cron field"],
    ["*-*-* 00:00:30", "the seconds must be 00"],
    ["*-*-* 02:00 Mars/Olympus", 'unknown time zone "Mars/Olympus"'],
    ["Mon *-*-1..7 18:00", "a day of the month and a weekday together"],
    ["*-*~01 00:00", "days counted from the end of the month"],
    ["Funday 10:00", 'expected a weekday such as Mon or Monday, got "Funday"'],
    ["*-*-* 25:00", "expected a hour from 0 to 23, got 25"],
  ])("refuses %s: %s", (calendar, why) => {
    expect(() => calendarToCron(calendar)).toThrow(why);
    expect(() => calendarToCron(calendar)).toThrow(`cannot convert OnCalendar=${calendar} to cron`);
  });

  it("reads a time zone last, which calendarToSchedule keeps and calendarToCron refuses", () => {
    expect(calendarToSchedule("*-*-* 02:00 Europe/Berlin")).toEqual({
      cron: "0 2 * * *",
      timezone: "Europe/Berlin",
    });
    expect(calendarToSchedule("Mon..Fri 09:30 UTC")).toEqual({ cron: "30 9 * * 1-5", timezone: "UTC" });
    expect(calendarToSchedule("daily")).toEqual({ cron: "0 0 * * *" });
    expect(() => calendarToCron("*-*-* 02:00 Europe/Berlin")).toThrow(
      "the time zone (Europe/Berlin) goes in TimeZone=",
    );
  });
});

describe("everyAsCron", () => {
  it.each([
    [15 * 60_000, "*/15 * * * *"],
    [60_000, "* * * * *"],
    [30_000, "*/30 * * * * *"],
    [3_600_000, "0 * * * *"],
    [6 * 3_600_000, "0 */6 * * *"],
    [86_400_000, "0 0 * * *"],
    [7 * 86_400_000, "0 0 * * 1"],
    [7 * 60_000, undefined],
    [90_000, undefined],
    [1500, undefined],
    [5 * 3_600_000, undefined],
  ])("%i ms -> %s", (ms, cron) => {
    expect(everyAsCron(ms)).toBe(cron);
  });
});

describe("systemd time spans", () => {
  it("reads systemd's units and bare seconds, and writes Taskframe durations", () => {
    expect(parseTimeSpanMs("90")).toBe(90_000);
    expect(parseTimeSpanMs("2h 30min")).toBe(9_000_000);
    expect(parseTimeSpanMs("1min30s500ms")).toBe(90_500);
    expect(parseTimeSpanMs("1d")).toBe(86_400_000);
    expect(parseTimeSpanMs("infinity")).toBeUndefined();
    expect(() => parseTimeSpanMs("5 fortnights")).toThrow('unknown time unit "fortnights"');
    expect(formatTimeSpan(9_000_000)).toBe("2h30m");
    expect(formatTimeSpan(90_500)).toBe("1m30s500ms");
    expect(formatTimeSpan(86_400_000)).toBe("24h");
  });
});

describe("importSystemd", () => {
  const service = unit(
    "[Unit]",
    "Description=Nightly backup",
    "Requires=postgresql.service",
    "After=network-online.target postgresql.service multi-user.target",
    "Wants=network-online.target",
    "",
    "[Service]",
    "Type=oneshot",
    'Environment="TARGET=/srv/backup dir" MODE=full',
    "Environment=LEVEL=9",
    "EnvironmentFile=-/etc/default/backup",
    "ExecStartPre=/bin/mkdir -p /srv/backup",
    `ExecStart=/usr/local/bin/backup --to \${TARGET} --level $LEVEL --name %N --pct 100%%`,
    "ExecStart=/usr/local/bin/second",
    "WorkingDirectory=-/var/lib/backup",
    "User=backup",
    "Group=backup",
    "RuntimeMaxSec=2h 30min",
    "MemoryMax=2G",
    "Restart=on-failure",
    "RestartSec=30",
    "Nice=10",
    "",
    "[Install]",
    "WantedBy=multi-user.target",
  );
  const timer = unit(
    "[Unit]",
    "Description=Every weekday night",
    "[Timer]",
    "OnCalendar=Mon..Fri *-*-* 02:00:00",
    "Persistent=true",
    "Unit=backup.service",
  );

  it("converts a service and its timer into a unit, keeping what it cannot convert as comments", () => {
    const { text, notConverted } = importSystemd(
      { file: SERVICE, text: service },
      { file: TIMER, text: timer },
    );
    expect(text).toBe(
      unit(
        "# Converted from backup.service and backup.timer by `task import-systemd`.",
        "# Nightly backup",
        "# $TARGET in ExecStart= was replaced by its value from Environment=",
        "# $LEVEL in ExecStart= was replaced by its value from Environment=",
        "# WorkingDirectory= lost its '-' prefix: the directory must exist.",
        "# Timer: Every weekday night",
        "# OnCalendar= ran in the host's time zone; cron= runs in UTC unless TimeZone= is set (e.g. TimeZone=Europe/Berlin).",
        "",
        "[Dependencies]",
        "Requires=postgresql.service",
        "After=network.target postgresql.service",
        "Wants=network.target",
        "",
        "[Service]",
        "User=backup",
        "Group=backup",
        "WorkingDirectory=/var/lib/backup",
        "MaxTime=2h30m",
        "LimitMem=2G",
        "Restart=on-failure",
        "RestartSec=30s",
        "",
        "[Environment]",
        'TARGET="/srv/backup dir"',
        'MODE="full"',
        'LEVEL="9"',
        "",
        "[Command]",
        `command="/usr/local/bin/backup --to '/srv/backup dir' --level 9 --name backup --pct 100%"`,
        "",
        "[RunIf]",
        'cron="0 2 * * 1-5"',
        "CatchUp=latest",
        "",
        "# not converted: After=multi-user.target",
        "#   (a systemd unit that is not a service; Taskframe has network.target built in)",
        "# not converted: EnvironmentFile=-/etc/default/backup",
        "#   (read when the service starts, and may hold secrets: copy the variables the task needs into [Environment])",
        "# not converted: ExecStart=/usr/local/bin/second",
        "#   (a task runs one command: only the first ExecStart= was converted; chain more with units)",
        "# not converted: ExecStartPre=/bin/mkdir -p /srv/backup",
        "# not converted: Nice=10",
        "# not converted: WantedBy=multi-user.target",
        "#   (systemd's [Install] says what pulls the unit in at boot; Taskframe's [Install] lists packages)",
      ),
    );
    expect(notConverted).toBe(6);
  });

  it("writes a unit that the unit compiler accepts as it is", async () => {
    const dir = await mkdtemp(join(tmpdir(), "taskframe-import-"));
    try {
      const { text } = importSystemd(
        {
          file: SERVICE,
          text: unit(
            "[Unit]",
            "Requires=postgresql.service",
            "After=network.target",
            "[Service]",
            'Environment="MSG=say \\"hi\\" # now" PATH_EXTRA=/opt/x\\\\y',
            "ExecStart=@/usr/bin/env backup-job sh -c 'echo \"$MSG\" > /tmp/out'",
            "Restart=always",
            "StartLimitBurst=3",
            "RuntimeMaxSec=infinity",
          ),
        },
        { file: TIMER, text: unit("[Timer]", "OnUnitActiveSec=15min", "OnBootSec=5min") },
      );
      await writeFile(join(dir, "backup.service"), text);
      await writeFile(join(dir, "postgresql.service"), '[Command]\ncommand="true"\n');
      const run = await loadUnitRun(join(dir, "backup.service"));
      const task = run.tasks.find((t) => t.name === "backup")!;
      expect(task.target.case === "exec" && task.target.value).toMatchObject({
        command: "/usr/bin/env",
        args: ["sh", "-c", 'echo "$MSG" > /tmp/out'],
        env: { MSG: 'say "hi" # now', PATH_EXTRA: "/opt/x\\y" },
      });
      expect(task.retry?.retries).toBe(3);
      expect(task.needs).toEqual(["postgresql"]);
      expect(task.after).toEqual(["network"]);
      expect(text).toContain('[RunIf]\ncron="*/15 * * * *"\nCatchUp=skip\n');
      expect(text).toContain(
        '# OnUnitActiveSec=15min became cron="*/15 * * * *": it fires on the clock, not after the last run.',
      );
      expect(text).toContain("MaxTime=infinity");
      expect(text).toContain("# Restart=always became Restart=3: a task is retried only when it fails.");
      expect(text).toContain('# argv[0] was "backup-job"');
      expect(text).toContain("# not converted: OnBootSec=5min");
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("converts TasksMax=, CPUQuota= and PrivateNetwork=, and says why the jail's other keys are left", async () => {
    const { text, notConverted } = importSystemd({
      file: SERVICE,
      text: unit(
        "[Service]",
        "ExecStart=/usr/bin/job",
        "TasksMax=32",
        "TasksMax=512",
        "CPUQuota=250%",
        "PrivateNetwork=true",
        "PrivateTmp=yes",
        "LimitCPU=60",
        "ProtectSystem=strict",
      ),
    });
    expect(text).toBe(
      unit(
        "# Converted from backup.service by `task import-systemd`.",
        "",
        "[Service]",
        "LimitPids=512",
        "LimitCPU=250%",
        "PrivateNetwork=yes",
        "",
        "[Command]",
        'command="/usr/bin/job"',
        "",
        "# not converted: PrivateTmp=yes",
        "#   (every jailed task has a private /tmp; its size is LimitDisk=)",
        "# not converted: LimitCPU=60",
        "#   (systemd's LimitCPU= is CPU seconds; Taskframe's LimitCPU= is a share of one CPU, as CPUQuota=)",
        "# not converted: ProtectSystem=strict",
        "#   (every task runs in its pool's jail; Jail=strict asks for a stricter one)",
      ),
    );
    expect(notConverted).toBe(3);
    const dir = await mkdtemp(join(tmpdir(), "taskframe-import-"));
    try {
      await writeFile(join(dir, "job.task"), text);
      const [task] = (await loadUnitRun(join(dir, "job.task"))).tasks;
      expect(task?.limits).toMatchObject({ pids: 512, cpuMillis: 2500 });
      expect(task?.privateNetwork).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ["TasksMax=infinity", "LimitPids=infinity", undefined],
    ["TasksMax=15%", undefined, "percentages of the host's pid limit are not supported"],
    ["TasksMax=0", undefined, "LimitPids= takes a number of processes from 1 to 4194304, or infinity"],
    ["CPUQuota=12.5%", undefined, "LimitCPU= takes a whole percentage of one CPU, from 1% to 100000%"],
    ["CPUQuota=0%", undefined, "LimitCPU= takes a whole percentage"],
    ["PrivateNetwork=off", "PrivateNetwork=no", undefined],
    ["PrivateNetwork=sometimes", undefined, "expected a boolean such as yes or no"],
    ["TasksMax=", undefined, undefined],
  ])("%s", (line, converted, reason) => {
    const { text, notConverted } = importSystemd({
      file: SERVICE,
      text: unit("[Service]", "ExecStart=/usr/bin/job", line),
    });
    if (converted) expect(text).toContain(`[Service]\n${converted}\n`);
    else expect(text).not.toContain("[Service]");
    if (reason) {
      expect(text).toContain(`# not converted: ${line}\n#   (`);
      expect(text).toContain(reason);
    }
    expect(notConverted).toBe(reason ? 1 : 0);
  });

  it("refuses, at their lines, what would change meaning if converted", () => {
    expect(
      problemsOf(unit("[Service]", "ExecStart=-/usr/bin/job", "Environment=TASKFRAME_RUN_ID=1 broken")),
    ).toEqual([
      `${SERVICE}:2:1: Service.ExecStart: cannot convert ExecStart=: the '-' prefix makes systemd ignore the command's failure, and a task fails when its command does: remove the '-', or wrap the command as \`/bin/sh -c 'COMMAND || true'\``,
      `${SERVICE}:3:1: Service.Environment: TASKFRAME_RUN_ID: TASKFRAME_* variables are set by Taskframe for every task`,
      `${SERVICE}:3:1: Service.Environment: expected NAME=VALUE assignments, got "broken"`,
    ]);
    expect(problemsOf(unit("[Service]", "ExecStart=+/usr/bin/job"))[0]).toContain(
      "the '+' prefix runs the command with full privileges, ignoring User= and Group=",
    );
    expect(
      problemsOf(unit("[Service]", "EnvironmentFile=/etc/x", "ExecStart=/usr/bin/job $PORT"))[0],
    ).toContain(
      "ExecStart= uses $PORT, which is not set by Environment= (it may come from EnvironmentFile=, which is not converted)",
    );
    expect(problemsOf(unit("[Service]", "ExecStart=/usr/bin/job --home %h"))[0]).toContain(
      "the specifier %h depends on the host",
    );
    expect(problemsOf(unit("[Service]", "ExecStart=/bin/a ; /bin/b"))[0]).toContain(
      "';' separates several commands",
    );
    expect(problemsOf(unit("[Service]", "ExecStart=/bin/echo '|'"))[0]).toContain("found `|`");
  });

  it("carries a timer's time zone, Persistent= and RandomizedDelaySec= into [RunIf]", async () => {
    const service = unit("[Service]", "ExecStart=/bin/true");
    const zoned = importSystemd(
      { file: SERVICE, text: service },
      {
        file: TIMER,
        text: unit("[Timer]", "OnCalendar=*-*-* 02:30 Europe/Berlin", "RandomizedDelaySec=5min"),
      },
    );
    expect(zoned.text).toContain(
      '[RunIf]\ncron="30 2 * * *"\nTimeZone=Europe/Berlin\nCatchUp=skip\nJitter=5m\n',
    );
    expect(zoned.text).not.toContain("host's time zone");
    expect(zoned.notConverted).toBe(0);
    const dir = await mkdtemp(join(tmpdir(), "taskframe-import-"));
    try {
      await writeFile(join(dir, "backup.service"), zoned.text);
      const [schedule] = await loadSchedules(join(dir, "backup.service"));
      expect(schedule?.trigger).toMatchObject({
        case: "cron",
        value: { expression: "30 2 * * *", timezone: "Europe/Berlin" },
      });
      expect(schedule?.policy).toMatchObject({ catchUp: CatchUpPolicy.SKIP, jitterMs: 300_000n });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const every = (span: string) =>
      importSystemd({ file: SERVICE, text: service }, { file: TIMER, text: unit("[Timer]", span) });
    const odd = every("OnUnitActiveSec=7min");
    expect(odd.text).not.toContain("[RunIf]");
    expect(odd.text).toContain(
      "# not converted: OnUnitActiveSec=7min\n#   (a unit repeats on cron=, and every 7m",
    );
    expect(every("OnUnitInactiveSec=1h").text).toContain('cron="0 * * * *"');
  });

  it("refuses timers it cannot express, naming the form", () => {
    const service = unit("[Service]", "ExecStart=/bin/true");
    expect(problemsOf(service, unit("[Timer]", "OnCalendar=*-*-* 02:00 Europe/Berln"))).toEqual([
      `${TIMER}:2:1: Timer.OnCalendar: cannot convert OnCalendar=*-*-* 02:00 Europe/Berln to cron: unknown time zone "Europe/Berln": expected an IANA time zone such as Europe/Berlin, America/New_York or UTC; did you mean "Europe/Berlin"? (expected minutely, hourly, daily, weekly, monthly, yearly, or a form such as "*-*-* 02:00:00" or "Mon..Fri *-*-* 09:00")`,
    ]);
    expect(problemsOf(service, unit("[Timer]", "OnCalendar=daily", "OnCalendar=weekly"))[0]).toContain(
      "a timer with several OnCalendar= has no single cron=",
    );
  });

  it("reports malformed lines of the systemd file", () => {
    expect(problemsOf(unit("ExecStart=/bin/true", "[Service", "just words"))).toEqual([
      `${SERVICE}:1:1: expected a [Section] header before the first key`,
      `${SERVICE}:2:1: expected a section header such as [Service]`,
      `${SERVICE}:3:1: expected \`Key=Value\` or a [Section] header`,
    ]);
  });
});
