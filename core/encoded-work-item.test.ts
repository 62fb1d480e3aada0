import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { encodedWorkItem, workItemWithEncodedSpec } from "./encoded-work-item.js";
import { WorkItemSchema } from "./gen/taskframe/v1/messages_pb.js";
import { TaskSpecSchema } from "./gen/taskframe/v1/spec_pb.js";

describe("workItemWithEncodedSpec", () => {
  it("decodes to the same item as encoding the whole item", () => {
    const spec = create(TaskSpecSchema, {
      name: "fetch",
      needs: ["a", "b"],
      target: { case: "exec", value: { command: "/bin/echo", args: ["héllo", "x".repeat(300)] } },
    });
    const fields = { taskId: "t-1", runId: "r-1", attempt: 2, dispatch: 3 };
    const item = workItemWithEncodedSpec(fields, spec, toBinary(TaskSpecSchema, spec));
    expect(fromBinary(WorkItemSchema, encodedWorkItem(item))).toEqual(
      create(WorkItemSchema, { ...fields, spec }),
    );
    expect(item.spec).toBe(spec);
  });
});
