"""`task run` on a pipeline served by the conformance adapter: the SDK against the real sidecar."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
TASK = os.path.join(REPO, "bin", "task.js")
PIPELINE = os.path.join(HERE, "conformance_pipeline.yaml")


def task(*args, timeout=120):
    env = {k: v for k, v in os.environ.items() if k not in ("TASKFRAME_DATA", "TASKFRAME_HUB", "TASKFRAME_SOCKET")}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        ["node", TASK] + list(args), cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


@unittest.skipUnless(
    shutil.which("node") and os.path.exists(TASK) and os.path.isdir(os.path.join(REPO, "dist")),
    "needs node and a built Taskframe (dist/)",
)
class EndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.data = tempfile.mkdtemp(prefix="tf-py-e2e-")
        cls.result = task("run", PIPELINE, "--data", cls.data, "--json")
        try:
            cls.run_state = json.loads(cls.result.stdout)
        except ValueError:
            raise AssertionError("task run printed no JSON:\n%s\n%s" % (cls.result.stdout, cls.result.stderr))
        cls.tasks = {t["name"]: t for t in cls.run_state["tasks"]}

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.data, ignore_errors=True)

    def assertTask(self, name, state, attempt, detail=None):
        t = self.tasks[name]
        self.assertEqual((t["state"], t["attempt"]), (state, attempt), "%s: %s" % (name, t))
        if detail:
            self.assertIn(detail, t["detail"] or "")

    def logs(self, name):
        shown = task("logs", name, "--data", self.data)
        return shown.stdout, shown.stderr

    def test_the_run_ends_failed_because_of_the_deliberate_failures(self):
        self.assertEqual(self.result.returncode, 1, self.result.stderr)
        self.assertEqual(self.run_state["run"]["state"], "FAILED")

    def test_results_and_errors_become_task_states(self):
        self.assertTask("echo", "SUCCEEDED", 1)
        self.assertTask("chatty", "SUCCEEDED", 1)
        self.assertTask("retried", "SUCCEEDED", 2)
        self.assertTask("retry-after", "SUCCEEDED", 2)
        self.assertTask("non-retryable", "FAILED", 1, "NonRetryableError: bad input")
        self.assertTask("unknown-step", "FAILED", 1, "unknown step 'teleport'")
        self.assertTask("timed-out", "TIMED_OUT", 1, "deadline exceeded")
        self.assertTask("after-echo", "SUCCEEDED", 1)

    def test_logs_and_progress_reach_the_task_log(self):
        out, err = self.logs("chatty")
        self.assertIn("hello from python", out)
        self.assertIn("to stderr", err)
        self.assertIn("progress 50% half", err)
        _, err = self.logs("retried")
        self.assertIn("ValueError: first attempt fails", err)
        _, err = self.logs("retry-after")
        self.assertIn("RetryAfter: come back later", err)

    def test_spawn_succeeds_or_fails_clearly(self):
        spawner = self.tasks["spawner"]
        if spawner["state"] == "SUCCEEDED":  # the hub supports Spawn
            self.assertEqual(self.tasks["spawner/child"]["state"], "SUCCEEDED")
            self.assertIn("child ran", self.logs("spawner/child")[0])
        else:
            self.assertEqual(spawner["state"], "FAILED")
            self.assertIn("SpawnError", spawner["detail"] or "")

    def test_the_worker_drained_without_errors(self):
        logs_dir = os.path.join(self.data, "workers")
        for name in os.listdir(logs_dir):
            with open(os.path.join(logs_dir, name), encoding="utf-8") as log:
                self.assertNotIn("Traceback", log.read(), name)


if __name__ == "__main__":
    unittest.main()
