CREATE TABLE "condition_evaluations" (
	"schedule" text NOT NULL,
	"slot" timestamp with time zone NOT NULL,
	"outcome" smallint NOT NULL,
	"run_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"host" text DEFAULT '' NOT NULL,
	"exit_code" integer,
	"started_at" timestamp with time zone,
	"duration_ms" bigint DEFAULT 0 NOT NULL,
	"detail" text DEFAULT '' NOT NULL,
	"fired" boolean DEFAULT false NOT NULL,
	CONSTRAINT "condition_evaluations_schedule_slot_pk" PRIMARY KEY("schedule","slot")
);
--> statement-breakpoint
CREATE TABLE "log_chunks" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "log_chunks_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"run_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"stream" smallint NOT NULL,
	"seq" integer NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"data" "bytea" NOT NULL,
	"dropped_bytes" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "log_chunks_dedupe_key" UNIQUE("task_id","attempt","stream","seq")
);
--> statement-breakpoint
CREATE TABLE "outbox" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "outbox_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"task_id" uuid NOT NULL,
	"pool" text NOT NULL,
	"payload" "bytea" NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "run_states" (
	"id" smallint PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	CONSTRAINT "run_states_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"state" smallint NOT NULL,
	"source" text DEFAULT '' NOT NULL,
	"labels" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"idempotency_key" text,
	"total_tasks" integer NOT NULL,
	"remaining_tasks" integer NOT NULL,
	"unsuccessful_tasks" integer DEFAULT 0 NOT NULL,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "runs_idempotency_key_unique" UNIQUE("idempotency_key")
);
--> statement-breakpoint
CREATE TABLE "schedule_fires" (
	"schedule" text NOT NULL,
	"slot" timestamp with time zone NOT NULL,
	"fired_at" timestamp with time zone DEFAULT now() NOT NULL,
	"outcome" smallint NOT NULL,
	"cause" smallint NOT NULL,
	"run_id" uuid,
	"detail" text DEFAULT '' NOT NULL,
	CONSTRAINT "schedule_fires_schedule_slot_pk" PRIMARY KEY("schedule","slot")
);
--> statement-breakpoint
CREATE TABLE "schedules" (
	"name" text PRIMARY KEY NOT NULL,
	"spec" "bytea" NOT NULL,
	"kind" text NOT NULL,
	"paused" boolean DEFAULT false NOT NULL,
	"paused_reason" text DEFAULT '' NOT NULL,
	"next_slot" timestamp with time zone,
	"next_due_at" timestamp with time zone,
	"last_run_id" uuid,
	"queued" integer DEFAULT 0 NOT NULL,
	"condition_held" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "task_edges" (
	"run_id" uuid NOT NULL,
	"parent_id" uuid NOT NULL,
	"child_id" uuid NOT NULL,
	"kind" text DEFAULT 'requires' NOT NULL,
	CONSTRAINT "task_edges_parent_id_child_id_pk" PRIMARY KEY("parent_id","child_id")
);
--> statement-breakpoint
CREATE TABLE "task_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "task_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"run_id" uuid NOT NULL,
	"task_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"from_state" smallint NOT NULL,
	"to_state" smallint NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"host" text DEFAULT '' NOT NULL,
	"lease_epoch" bigint DEFAULT 0 NOT NULL,
	"exit_code" integer,
	"detail" text DEFAULT '' NOT NULL,
	"rejected" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
CREATE TABLE "task_outputs" (
	"task_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"lease_epoch" bigint NOT NULL,
	"data" "bytea" NOT NULL,
	"content_type" text DEFAULT '' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "task_outputs_task_id_attempt_lease_epoch_pk" PRIMARY KEY("task_id","attempt","lease_epoch")
);
--> statement-breakpoint
CREATE TABLE "task_states" (
	"id" smallint PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	CONSTRAINT "task_states_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "tasks" (
	"id" uuid PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"name" text NOT NULL,
	"state" smallint NOT NULL,
	"attempt" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"dispatch" integer DEFAULT 0 NOT NULL,
	"lease_epoch" bigint DEFAULT 0 NOT NULL,
	"pending_deps" integer NOT NULL,
	"pool" text NOT NULL,
	"handler" text,
	"spec" "bytea" NOT NULL,
	"retry_at" timestamp with time zone,
	"output" "bytea",
	"output_content_type" text,
	"cancel_requested" boolean DEFAULT false NOT NULL,
	"parent_id" uuid,
	"open_children" integer DEFAULT 0 NOT NULL,
	"subtree_failed" boolean DEFAULT false NOT NULL,
	"host" text,
	"exit_code" integer,
	"detail" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	CONSTRAINT "tasks_run_id_name_key" UNIQUE("run_id","name")
);
--> statement-breakpoint
ALTER TABLE "condition_evaluations" ADD CONSTRAINT "condition_evaluations_schedule_schedules_name_fk" FOREIGN KEY ("schedule") REFERENCES "public"."schedules"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_state_run_states_id_fk" FOREIGN KEY ("state") REFERENCES "public"."run_states"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedule_fires" ADD CONSTRAINT "schedule_fires_schedule_schedules_name_fk" FOREIGN KEY ("schedule") REFERENCES "public"."schedules"("name") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "task_edges" ADD CONSTRAINT "task_edges_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tasks" ADD CONSTRAINT "tasks_state_task_states_id_fk" FOREIGN KEY ("state") REFERENCES "public"."task_states"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "condition_evaluations_pending_idx" ON "condition_evaluations" USING btree ("schedule") WHERE outcome = 1;--> statement-breakpoint
CREATE INDEX "runs_created_at_idx" ON "runs" USING btree ("created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "schedule_fires_queued_idx" ON "schedule_fires" USING btree ("schedule","slot") WHERE run_id is null and outcome = 3;--> statement-breakpoint
CREATE INDEX "schedules_next_due_idx" ON "schedules" USING btree ("next_due_at") WHERE not paused;--> statement-breakpoint
CREATE INDEX "task_edges_child_idx" ON "task_edges" USING btree ("child_id");--> statement-breakpoint
CREATE INDEX "task_edges_run_idx" ON "task_edges" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "task_events_task_idx" ON "task_events" USING btree ("task_id","id");--> statement-breakpoint
CREATE INDEX "tasks_name_idx" ON "tasks" USING btree ("name");--> statement-breakpoint
CREATE INDEX "tasks_parent_idx" ON "tasks" USING btree ("parent_id") WHERE parent_id is not null;--> statement-breakpoint
CREATE INDEX "tasks_retry_at_idx" ON "tasks" USING btree ("retry_at") WHERE state = 6;--> statement-breakpoint
CREATE INDEX "tasks_dispatched_idx" ON "tasks" USING btree ("updated_at") WHERE state in (2, 3);