CREATE TABLE "host_events" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "host_events_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"pool" text NOT NULL,
	"token" uuid,
	"provider_host_id" text DEFAULT '' NOT NULL,
	"action" text NOT NULL,
	"detail" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
CREATE TABLE "hosts" (
	"name" text PRIMARY KEY NOT NULL,
	"provider_host_id" text DEFAULT '' NOT NULL,
	"pools" jsonb NOT NULL,
	"slots" integer NOT NULL,
	"running" integer NOT NULL,
	"draining" boolean NOT NULL,
	"stopped" boolean NOT NULL,
	"labels" jsonb NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "provisioned_hosts" (
	"token" uuid PRIMARY KEY NOT NULL,
	"pool" text NOT NULL,
	"provider" text NOT NULL,
	"provider_host_id" text,
	"state" text NOT NULL,
	"create_attempts" integer DEFAULT 0 NOT NULL,
	"retry_at" timestamp with time zone,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"running_at" timestamp with time zone,
	"registered_at" timestamp with time zone,
	"draining_at" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	"detail" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "memory_bytes" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "tasks" ADD COLUMN "cpu_millis" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "host_events_pool_idx" ON "host_events" USING btree ("pool","id");--> statement-breakpoint
CREATE INDEX "provisioned_hosts_pool_idx" ON "provisioned_hosts" USING btree ("pool") WHERE deleted_at is null;