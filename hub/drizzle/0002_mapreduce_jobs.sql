CREATE TABLE "mapreduce_jobs" (
	"run_id" uuid PRIMARY KEY NOT NULL,
	"job_id" text NOT NULL,
	"state" text NOT NULL,
	"staging_dir" text NOT NULL,
	"output" text NOT NULL,
	"output_kind" smallint NOT NULL,
	"maps" integer NOT NULL,
	"reducers" integer NOT NULL,
	"detail" text DEFAULT '' NOT NULL,
	"counters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone,
	"finished_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "mapreduce_jobs" ADD CONSTRAINT "mapreduce_jobs_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "mapreduce_jobs_state_idx" ON "mapreduce_jobs" USING btree ("state","finished_at");