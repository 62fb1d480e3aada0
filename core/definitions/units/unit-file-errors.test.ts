import { describe, expect, it } from "vitest";
import { DefinitionError, DefinitionErrors } from "../../errors.js";
import { buildCatalogue } from "./catalogue.js";
import { parseUnitText } from "./unit-file.js";

const DIR = "units";
const unit = (...lines: string[]): string => `${lines.join("\n")}\n`;
const RUNS = unit("[Command]", "command=./run.sh");
const SERVICE_KEYS =
  "(expected one of: User, Group, WorkingDirectory, Restart, RestartSec, RestartPreventExitStatus, LimitMem, LimitDisk, LimitPids, LimitCPU, MaxTime, PrivateNetwork, Jail)";

function problemsOf(text: string, fileName = "a.task"): string[] {
  const { unit: parsed, problems } = parseUnitText(text, `${DIR}/${fileName}`, fileName);
  if (problems.length === 0) expect(parsed).toBeDefined();
  for (const problem of problems) {
    expect(problem).toBeInstanceOf(DefinitionError);
    expect(problem.message).not.toContain("\n");
  }
  return problems.map((problem) => problem.message);
}

/** Asserts the file has exactly one problem, `units/a.task:WHERE: PATH: ...` containing `expected`. */
function expectProblem(text: string, where: string, path: string | undefined, ...expected: string[]): void {
  const messages = problemsOf(text);
  expect(messages, messages.join("\n")).toHaveLength(1);
  const [message = ""] = messages;
  const prefix = path ? `${DIR}/a.task:${where}: ${path}: ` : `${DIR}/a.task:${where}: `;
  expect(message.startsWith(prefix), message).toBe(true);
  for (const part of expected) expect(message).toContain(part);
}

describe("unit errors: sections and keys", () => {
  it("names an unknown section and suggests the closest", () => {
    expectProblem(
      unit("[Servce]", "User=test", ...RUNS.split("\n")),
      "1:1",
      "Servce",
      "unknown section [Servce]; did you mean [Service]?",
      "(expected one of: Dependencies, Service, Checks, Environment, Args, Command, RunIf, Install, MapReduce)",
    );
  });

  it("says that names are case-sensitive", () => {
    expectProblem(
      unit("[service]", "User=test", "[Command]", "command=x"),
      "1:1",
      "service",
      "did you mean [Service]? (names are case-sensitive)",
    );
    expectProblem(
      unit("[Service]", "user=test", "[Command]", "command=x"),
      "2:1",
      "Service.user",
      "unknown key 'user' in [Service]; did you mean 'User'? (names are case-sensitive)",
    );
  });

  it("names an unknown key, suggests the closest and lists the section's keys", () => {
    expectProblem(
      unit("[Command]", "command=x", "[Service]", "  Usr=test"),
      "4:3",
      "Service.Usr",
      "unknown key 'Usr' in [Service]; did you mean 'User'?",
      "(expected one of: User, Group, WorkingDirectory, Restart, RestartSec, RestartPreventExitStatus, LimitMem, LimitDisk, LimitPids, LimitCPU, MaxTime, PrivateNetwork, Jail)",
    );
    const [message] = problemsOf(unit("[Command]", "command=x", "[Service]", "Image=ubuntu"));
    expect(message).not.toContain("did you mean");
  });

  it("has advice for keys and sections that systemd users reach for", () => {
    const messages = problemsOf(unit("[Unit]", "After=x.service", "[Service]", "ExecStart=/bin/true", RUNS));
    expect(messages).toEqual([
      `${DIR}/a.task:1:1: Unit: unknown section [Unit]: Requires=, After= and Wants= go in [Dependencies] (expected one of: Dependencies, Service, Checks, Environment, Args, Command, RunIf, Install, MapReduce)`,
      `${DIR}/a.task:4:1: Service.ExecStart: unknown key 'ExecStart' in [Service]: the command goes in [Command] command="..." (arguments in [Args] args="...") (expected one of: User, Group, WorkingDirectory, Restart, RestartSec, RestartPreventExitStatus, LimitMem, LimitDisk, LimitPids, LimitCPU, MaxTime, PrivateNetwork, Jail)`,
    ]);
  });

  it("points systemd's resource and sandboxing keys at the unit's", () => {
    const messages = problemsOf(
      unit("[Service]", "TasksMax=64", "CPUQuota=150%", "PrivateTmp=yes", "ProtectSystem=strict", RUNS),
    );
    expect(messages).toEqual([
      `${DIR}/a.task:2:1: Service.TasksMax: unknown key 'TasksMax' in [Service]: the process limit is LimitPids= ${SERVICE_KEYS}`,
      `${DIR}/a.task:3:1: Service.CPUQuota: unknown key 'CPUQuota' in [Service]: the CPU limit is LimitCPU= (a percentage of one CPU, as CPUQuota=) ${SERVICE_KEYS}`,
      `${DIR}/a.task:4:1: Service.PrivateTmp: unknown key 'PrivateTmp' in [Service]: every jailed task has a private /tmp; its size is LimitDisk= ${SERVICE_KEYS}`,
      `${DIR}/a.task:5:1: Service.ProtectSystem: unknown key 'ProtectSystem' in [Service]: every task runs in its pool's jail; to ask for a stricter one, write Jail=strict ${SERVICE_KEYS}`,
    ]);
  });

  it("treats __proto__ as any other unknown name", () => {
    expect(problemsOf(unit("[Service]", "__proto__=x", "[__proto__]", "a=b", RUNS))).toEqual([
      `${DIR}/a.task:2:1: Service.__proto__: unknown key '__proto__' in [Service] (expected one of: User, Group, WorkingDirectory, Restart, RestartSec, RestartPreventExitStatus, LimitMem, LimitDisk, LimitPids, LimitCPU, MaxTime, PrivateNetwork, Jail)`,
      `${DIR}/a.task:3:1: __proto__: unknown section [__proto__] (expected one of: Dependencies, Service, Checks, Environment, Args, Command, RunIf, Install, MapReduce)`,
    ]);
  });

  it("ignores X- sections and keys, as systemd does", () => {
    expect(problemsOf(unit("[X-Team]", "owner=me", "[Service]", "X-Note=hi", RUNS))).toEqual([]);
  });

  it("rejects a key set twice where a unit sets it once", () => {
    expectProblem(
      unit("[Service]", "User=a", "User=b", RUNS),
      "3:1",
      "Service.User",
      "`User=` is already set at line 2; a unit sets it once",
    );
    expectProblem(
      unit("[Command]", "command=a", "[Service]", "User=a", "[Command]", "command=b"),
      "6:1",
      "Command.command",
      "already set at line 2",
    );
  });

  it("requires command= in [Command] and map/reduce/input in [MapReduce]", () => {
    expectProblem(
      unit("[Command]", "# nothing"),
      "1:1",
      "Command.command",
      'missing `command=`; expected e.g. command="./run.sh"',
    );
    const messages = problemsOf(unit("[MapReduce]", "partitions=4"));
    expect(messages).toEqual([
      `${DIR}/a.task:1:1: MapReduce.map: missing \`map=\`; expected the command that maps one partition`,
      `${DIR}/a.task:1:1: MapReduce.reduce: missing \`reduce=\`; expected the command that combines the results`,
      `${DIR}/a.task:1:1: MapReduce.input: missing \`input=\`; expected what to partition`,
    ]);
  });
});

describe("unit errors: values", () => {
  it.each([
    [
      "[Service]",
      "LimitMem=8GB",
      "2:10",
      "Service.LimitMem",
      'sizes are powers of 1024 written without "B": "8G"',
    ],
    ["[Service]", "LimitDisk=lots # big", "2:11", "Service.LimitDisk", 'expected a size such as "512M"'],
    ["[Service]", "MaxTime=soon", "2:9", "Service.MaxTime", 'expected a duration such as "500ms", "30s"'],
    [
      "[Service]",
      "LimitPids=0",
      "2:11",
      "Service.LimitPids",
      `expected a number of processes from 1 to 4194304, or "infinity", got "0"; leave it out for the pool's default`,
    ],
    [
      "[Service]",
      "LimitPids=5000000 # lots",
      "2:11",
      "Service.LimitPids",
      "expected at most 4194304 processes",
    ],
    [
      "[Service]",
      "LimitCPU=30",
      "2:10",
      "Service.LimitCPU",
      `expected a percentage of one CPU such as "50%", "150%" or "200%" (1% to 100000%), or "infinity", got "30" (add "%": "3000%" is 30 CPUs; unlike systemd's LimitCPU=, which is CPU seconds, this is a share of one CPU)`,
    ],
    ["[Service]", "LimitCPU=0%", "2:10", "Service.LimitCPU", 'for no quota write "infinity"'],
    [
      "[Service]",
      "PrivateNetwork=maybe",
      "2:16",
      "Service.PrivateNetwork",
      'expected "yes" or "no" (or true/false, on/off, 1/0), got "maybe"',
    ],
    [
      "[Service]",
      "Jail=none",
      "2:6",
      "Service.Jail",
      `expected "standard" or "strict", got "none": a task can ask for a stricter jail than its pool's, never a looser one; only the operator chooses "none", for a whole pool`,
    ],
    ["[Service]", "RestartSec=-1s", "2:12", "Service.RestartSec", "expected a non-negative duration"],
    ["[Service]", "Restart=always", "2:9", "Service.Restart", "a task is retried only when it fails"],
    [
      "[Service]",
      "RestartPreventExitStatus=2 300",
      "2:26",
      "Service.RestartPreventExitStatus",
      'expected exit codes from 0 to 255 separated by spaces, such as "2 42", got "2 300"',
    ],
    [
      "[Service]",
      'User="two words"',
      "2:6",
      "Service.User",
      'expected a user name such as "test" or a numeric id',
    ],
    ["[Service]", "Group=-x", "2:7", "Service.Group", "expected a group name"],
    ["[Service]", "WorkingDirectory=~/site", "2:18", "Service.WorkingDirectory", "~ is not expanded"],
    ["[Service]", "WorkingDirectory=-/tmp/x", "2:18", "Service.WorkingDirectory", '"-" prefix'],
    ["[RunIf]", 'cron="* 25 * * *"', "2:9", "RunIf.cron", 'cron hour field "25": expected 0-23'],
    ["[RunIf]", "cron=@reboot", "2:6", "RunIf.cron", "@reboot is not supported"],
    ["[RunIf]\nRequires=./due.sh", "Interval=0s", "3:10", "RunIf.Interval", "expected a duration above 0"],
    ["[RunIf]", "Requires=./check.sh | wc", "2:10", "RunIf.Requires", "found `|`"],
    [
      "[RunIf]\ncron=@daily",
      "TimeZone=Europe/Berln",
      "3:10",
      "RunIf.TimeZone",
      'unknown time zone "Europe/Berln": expected an IANA time zone such as Europe/Berlin, America/New_York or UTC; did you mean "Europe/Berlin"?',
    ],
    [
      "[RunIf]\ncron=@daily",
      "TimeZone=+01:00",
      "3:10",
      "RunIf.TimeZone",
      "a fixed offset does not follow daylight saving time",
    ],
    [
      "[RunIf]\ncron=@daily",
      "Overlap=cancel_previous",
      "3:9",
      "RunIf.Overlap",
      'expected "skip", "queue", "allow" or "cancel-previous", got "cancel_previous"; did you mean "cancel-previous"?',
    ],
    [
      "[RunIf]\ncron=@daily",
      "CatchUp=all",
      "3:9",
      "RunIf.CatchUp",
      'expected "skip", "latest", "backfill" or "backfill(max=N)" (N from 1 to 10000), got "all"',
    ],
    [
      "[RunIf]\ncron=@daily",
      "CatchUp=backfill(max=0)",
      "3:22",
      "RunIf.CatchUp",
      'expected backfill(max=N) with N a number of slots from 1 to 10000, got "0"',
    ],
    ["[RunIf]\ncron=@daily", "Jitter=a bit", "3:8", "RunIf.Jitter", 'expected a duration such as "500ms"'],
    [
      "[RunIf]\ncron=@daily",
      "Start=tomorrow",
      "3:7",
      "RunIf.Start",
      'expected an ISO 8601 date or date-time such as 2026-12-01, 2026-12-01T08:00 or 2026-12-01T08:00+01:00, got "tomorrow"',
    ],
    ["[RunIf]\ncron=@daily", "End=2026-04-31", "3:5", "RunIf.End", "2026-04 has no day 31"],
    ["[RunIf]\nRequires=./due.sh", "Timeout=0", "3:9", "RunIf.Timeout", "expected a duration above 0"],
    [
      "[RunIf]\nRequires=./due.sh",
      "Mode=rising",
      "3:6",
      "RunIf.Mode",
      'expected "edge" or "level", got "rising"',
    ],
    [
      "[RunIf]\nTimeZone=America/New_York",
      "cron=0 0 30 2 *",
      "3:6",
      "RunIf.cron",
      'cron "0 0 30 2 *" never fires',
    ],
    [
      "[Dependencies]",
      "Requires=libpng.service ../x/y.service",
      "2:25",
      "Dependencies.Requires",
      "units name units in their own directory",
    ],
    [
      "[Dependencies]",
      'After="ok.service -bad"',
      "2:19",
      "Dependencies.After",
      'expected a unit name such as "libpng.service", got "-bad"',
    ],
    ["[Dependencies]", 'Wants=a "b', "2:9", "Dependencies.Wants", "a quote is not closed"],
    ["[Checks]", "check pandoc=./x", "2:1", undefined, 'invalid key "check pandoc"'],
    ["[Checks]", "-x=./x", "2:1", "Checks.-x", "expected a check name of letters, digits"],
    ["[Checks]", 'c="./check \\"unclosed"', "2:3", "Checks.c", "a quote is not closed"],
    [
      "[Environment]",
      "1BAD=x",
      "2:1",
      "Environment.1BAD",
      "expected an environment variable name such as DOCKER_PORT",
    ],
    ["[Environment]", "TASKFRAME_RUN_ID=x", "2:18", "Environment.TASKFRAME_RUN_ID", "set by taskframe"],
    ["[Args]", "args=a && b", "2:6", "Args.args", "found `&&`"],
    [
      "[Install]",
      "pip=requests -e git+https://x",
      "2:14",
      "Install.pip",
      "installer options are not allowed",
    ],
    [
      "[Install]",
      "From=",
      "2:6",
      "Install.From",
      "expected a file listing dependencies, e.g. deps.json, got nothing",
    ],
  ])("%s %s", (section, line, where, path, expected) => {
    expectProblem(
      unit(section, line, ...(section === "[Args]" ? ["[Command]", "command=x"] : RUNS.split("\n"))),
      where,
      path,
      expected,
    );
  });

  it("rejects an empty command", () => {
    expectProblem(unit("[Command]", "command="), "2:9", "Command.command", 'expected a command, got ""');
    expectProblem(unit("[Command]", 'command=""'), "2:9", "Command.command", "expected a command");
  });

  it("rejects a check or variable set twice", () => {
    expectProblem(
      unit("[Checks]", "a=./x", "a=./y", RUNS),
      "3:1",
      "Checks.a",
      '"a" is already set at line 2',
    );
    expectProblem(
      unit("[Environment]", "A=1", "[Checks]", "[Environment]", "A=2", RUNS),
      "5:1",
      "Environment.A",
      "already set at line 2",
    );
  });

  it("points at the MapReduce value that is wrong", () => {
    expectProblem(
      unit("[MapReduce]", "map=./map.sh", "reduce=./reduce.sh", "input=s3://bucket/*", "partitions=0"),
      "5:12",
      "MapReduce.partitions",
      "expected a number of partitions from 1 to 999999",
    );
  });
});

describe("unit errors: artifacts", () => {
  const HEX = "0123456789abcdef".repeat(4);

  it.each([
    [
      "Artifact=https://example.com/jq",
      "2:10",
      "missing sha256=HEX after the URL: an artifact is pinned by its sha256 (Artifact=URL sha256=HEX, HEX being 64 hex digits)",
    ],
    [
      `Artifact=jq.tar.gz sha256=${HEX}`,
      "2:10",
      'expected an absolute path, a file:// URL or an http(s):// URL, got "jq.tar.gz" (a path must be absolute)',
    ],
    ["Artifact=https://example.com/jq sha256=abc", "2:40", `got "abc" (3 digits)`],
    [
      `Artifact=https://example.com/jq sha512=${HEX}`,
      "2:33",
      `expected sha256=HEX after the URL, got "sha512=${HEX}" (only sha256 is supported)`,
    ],
    ["Artifact=https://example.com/jq abc", "2:33", 'expected sha256=HEX after the URL, got "abc"'],
    [
      `Artifact=sha256=${HEX} https://example.com/jq`,
      "2:10",
      `expected the URL first: Artifact=URL sha256=HEX, got "sha256=${HEX}"`,
    ],
    [
      `Artifact=/opt/a sha256=${HEX} /opt/b`,
      "2:89",
      'expected Artifact=URL sha256=HEX, got one more word "/opt/b" (one artifact per line)',
    ],
    ['Artifact="/opt/a', "2:10", "a quote is not closed"],
  ])("%s", (line, where, expected) => {
    expectProblem(unit("[Install]", line, RUNS), where, "Install.Artifact", expected);
  });

  it("reports each bad artifact line, and accepts the good ones", () => {
    expect(
      problemsOf(
        unit(
          "[Install]",
          `Artifact=/opt/tools/jq sha256=${HEX}`,
          "Artifact=ftp://example.com/x",
          `Artifact=file:///opt/x.tgz sha256=${HEX}`,
          RUNS,
        ),
      ),
    ).toEqual([
      `${DIR}/a.task:3:10: Install.Artifact: expected an absolute path, a file:// URL or an http(s):// URL, got "ftp://example.com/x" (ftp: is not supported)`,
      `${DIR}/a.task:3:10: Install.Artifact: missing sha256=HEX after the URL: an artifact is pinned by its sha256 (Artifact=URL sha256=HEX, HEX being 64 hex digits)`,
    ]);
  });
});

describe("unit errors: kinds of unit", () => {
  it("requires a command of tasks and services", () => {
    expectProblem(
      unit("[Checks]", "c=./c"),
      "1:1",
      "Command",
      "a .task needs a [Command] section with command=...; only a .target has none",
    );
    expect(problemsOf(unit("[Checks]", "c=./c"), "s.service")[0]).toContain("a .service needs a [Command]");
    expect(problemsOf("", "empty.task")).toEqual([
      `${DIR}/empty.task:1:1: Command: a .task needs a [Command] section with command=...; only a .target has none`,
    ]);
  });

  it("rejects a command in a target", () => {
    const messages = problemsOf(
      unit("[Checks]", "c=./c", "[Args]", "args=x", "[Command]", "command=x"),
      "t.target",
    );
    expect(messages).toEqual([
      `${DIR}/t.target:3:1: Args: a .target runs no command: it is done when its [Checks] pass; to run a command, name the file NAME.task or NAME.service`,
      `${DIR}/t.target:5:1: Command: a .target runs no command: it is done when its [Checks] pass; to run a command, name the file NAME.task or NAME.service`,
    ]);
    expect(problemsOf("", "empty.target")).toEqual([]);
  });

  it("rejects [Command] with [MapReduce], and [Args] without [Command]", () => {
    const mapReduce = ["[MapReduce]", "map=./m", "reduce=./r", "input=in/*"];
    expectProblem(
      unit("[Command]", "command=x", ...mapReduce),
      "3:1",
      "MapReduce",
      "[Command] or [MapReduce], not both",
    );
    expectProblem(unit(...mapReduce, "[Args]", "args=x"), "5:1", "Args", "this unit has no [Command]");
  });

  it("rejects both cron= and Interval=", () => {
    expectProblem(unit("[RunIf]", "cron=@hourly", "Interval=5m", RUNS), "3:1", "RunIf.Interval", "keep one");
  });

  it("rejects file names that cannot be task names", () => {
    expect(problemsOf(RUNS, "bad name.task")).toEqual([
      `${DIR}/bad name.task:1:1: invalid unit name "bad name.task": the part before the extension is the task's name, 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit`,
    ]);
    expect(problemsOf(RUNS, "x.timer")[0]).toContain(
      'expected a unit file ending in .task, .service or .target, got "x.timer"',
    );
  });
});

describe("unit errors: which [RunIf] keys go together", () => {
  it("rejects Interval= without Requires=: a periodic run is cron=", () => {
    expectProblem(
      unit("[RunIf]", "Interval=5m", RUNS),
      "2:1",
      "RunIf.Interval",
      'Interval= says how often to evaluate Requires=, and this unit has no Requires=; for a periodic run use cron=, e.g. cron="*/5 * * * *"',
    );
    expect(problemsOf(unit("[RunIf]", "Requires=./due.sh", "Interval=5m", RUNS))).toEqual([]);
  });

  it("rejects the settings of a schedule in a unit that has none", () => {
    const text = unit(
      "[RunIf]",
      "Overlap=queue",
      "CatchUp=skip",
      "Jitter=5s",
      "Start=2026-12-01",
      "End=2027-01-01",
      RUNS,
    );
    const tail =
      'and this unit has no schedule: add cron= (e.g. cron="0 2 * * *") or a condition to evaluate, Requires=';
    expect(problemsOf(text)).toEqual([
      `${DIR}/a.task:2:1: RunIf.Overlap: Overlap= says what a firing does while the previous run is still going, ${tail}`,
      `${DIR}/a.task:3:1: RunIf.CatchUp: CatchUp= says what happens to the firings missed while no hub ran, ${tail}`,
      `${DIR}/a.task:4:1: RunIf.Jitter: Jitter= says how long each firing may wait, ${tail}`,
      `${DIR}/a.task:5:1: RunIf.Start: Start= says when the schedule begins, ${tail}`,
      `${DIR}/a.task:6:1: RunIf.End: End= says when the schedule ends, ${tail}`,
    ]);
    for (const trigger of ["cron=@daily", "Requires=./due.sh"]) {
      expect(problemsOf(text.replace("[RunIf]", `[RunIf]\n${trigger}`))).toEqual([]);
    }
  });

  it("takes TimeZone= only with cron=", () => {
    expectProblem(
      unit("[RunIf]", "TimeZone=UTC", RUNS),
      "2:1",
      "RunIf.TimeZone",
      "TimeZone= is the time zone of cron=, and this unit has no cron=",
    );
    expectProblem(
      unit("[RunIf]", "Requires=./due.sh", "TimeZone=UTC", RUNS),
      "3:1",
      "RunIf.TimeZone",
      "Start= and End= of a condition take an offset instead (2026-12-01T08:00+01:00)",
    );
  });

  it("takes Timeout= and Mode= only for a condition schedule", () => {
    expect(problemsOf(unit("[RunIf]", "Timeout=10s", "Mode=level", RUNS))).toEqual([
      `${DIR}/a.task:2:1: RunIf.Timeout: Timeout= limits each evaluation of Requires=, and this unit has no Requires=`,
      `${DIR}/a.task:3:1: RunIf.Mode: Mode= says when Requires= holding fires the unit, and this unit has no Requires=`,
    ]);
    expectProblem(
      unit("[RunIf]", "cron=@daily", "Requires=./due.sh", "Mode=level", RUNS),
      "4:1",
      "RunIf.Mode",
      "this unit fires on cron= instead (Requires= is then checked when the run starts), so Mode= would do nothing",
    );
    expect(problemsOf(unit("[RunIf]", "Requires=./due.sh", "Timeout=10s", "Mode=level", RUNS))).toEqual([]);
  });

  it("wants End= after Start=, both read in TimeZone=", () => {
    expectProblem(
      unit("[RunIf]", "cron=@daily", "Start=2026-12-01", "End=2026-11-30T23:59", RUNS),
      "4:5",
      "RunIf.End",
      "expected End= after Start= (line 3), got 2026-11-30T23:59, which is not after 2026-12-01",
    );
    // Midnight in Berlin is 23:00 UTC the day before: the same instant.
    expectProblem(
      unit(
        "[RunIf]",
        "cron=@daily",
        "TimeZone=Europe/Berlin",
        "Start=2026-12-01",
        "End=2026-11-30T23:00Z",
        RUNS,
      ),
      "5:5",
      "RunIf.End",
      "expected End= after Start= (line 4)",
    );
    expect(
      problemsOf(unit("[RunIf]", "cron=@daily", "TimeZone=Mars/Base", "Start=2026-12-01", RUNS)),
    ).toEqual([
      `${DIR}/a.task:3:10: RunIf.TimeZone: unknown time zone "Mars/Base": expected an IANA time zone such as Europe/Berlin, America/New_York or UTC`,
    ]);
  });

  it("suggests the keys of [RunIf], with advice for systemd's timer keys", () => {
    expectProblem(
      unit("[RunIf]", "cron=@daily", "Timezone=UTC", RUNS),
      "3:1",
      "RunIf.Timezone",
      "did you mean 'TimeZone'? (names are case-sensitive)",
    );
    expectProblem(
      unit("[RunIf]", "cron=@daily", "CatchUP=skip", RUNS),
      "3:1",
      "RunIf.CatchUP",
      "did you mean 'CatchUp'?",
    );
    expectProblem(
      unit("[RunIf]", "cron=@daily", "Persistent=true", RUNS),
      "3:1",
      "RunIf.Persistent",
      "what happens to missed firings is CatchUp= (skip, latest, backfill or backfill(max=N))",
      "(expected one of: cron, Requires, Interval, TimeZone, Overlap, CatchUp, Jitter, Start, End, Timeout, Mode)",
    );
    expectProblem(
      unit("[RunIf]", "OnCalendar=daily", RUNS),
      "2:1",
      "RunIf.OnCalendar",
      'a schedule is cron= (e.g. cron="0 2 * * *")',
    );
  });
});

describe("unit errors: several at once", () => {
  it("reports every problem of a file, in file order, syntax and schema together", () => {
    const text = unit(
      "[Service]",
      "Restart=always",
      "LimitMem=8GB",
      "oops no equals",
      "[Chekcs]",
      "c=./c",
      "[Command]",
      "command=./run.sh",
      "[RunIf]",
      "cron=* * *",
    );
    expect(problemsOf(text)).toEqual([
      `${DIR}/a.task:2:9: Service.Restart: expected "never", "on-failure" (5 retries) or a number of retries such as 5, got "always": a task is retried only when it fails`,
      `${DIR}/a.task:3:10: Service.LimitMem: expected a size such as "512M", "8G", "1.5G", "100K", a number of bytes, or "infinity", got "8GB" (sizes are powers of 1024 written without "B": "8G")`,
      `${DIR}/a.task:4:1: expected \`KEY=VALUE\`, a \`[Section]\` header, or a comment starting with '#' or ';'`,
      `${DIR}/a.task:5:1: Chekcs: unknown section [Chekcs]; did you mean [Checks]? (expected one of: Dependencies, Service, Checks, Environment, Args, Command, RunIf, Install, MapReduce)`,
      `${DIR}/a.task:10:6: RunIf.cron: expected 5 fields ("minute hour day-of-month month day-of-week", e.g. "*/5 * * * *"), 6 with seconds first, or a macro such as @hourly, got 3 fields`,
    ]);
  });

  it("throws them together as DefinitionErrors from a catalogue", () => {
    const files = [
      { fileName: "a.task", text: unit("[Service]", "MaxTime=soon", "[Command]", "command=x") },
      {
        fileName: "b.task",
        text: unit("[Command]", "command=x", "[Dependencies]", "Requires=libpng.service"),
      },
    ];
    let caught: unknown;
    try {
      buildCatalogue(DIR, files);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DefinitionErrors);
    const errors = caught as DefinitionErrors;
    expect(errors.problems.map((problem) => problem.message)).toEqual([
      `${DIR}/a.task:2:9: Service.MaxTime: expected a duration such as "500ms", "30s", "10m" or "1h30m", got "soon" (a bare number is seconds, or "infinity" for no limit)`,
      `${DIR}/b.task:4:10: Dependencies.Requires: no unit named "libpng.service" in ${DIR} (units there: a.task, b.task)`,
    ]);
    expect(errors.message.split("\n")).toHaveLength(2);
  });
});
