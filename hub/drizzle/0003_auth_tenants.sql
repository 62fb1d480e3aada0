CREATE TABLE "auth_denials" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "auth_denials_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"principal" text DEFAULT '' NOT NULL,
	"rpc" text NOT NULL,
	"code" text NOT NULL,
	"reason" text NOT NULL,
	"peer" text DEFAULT '' NOT NULL
);
--> statement-breakpoint
ALTER TABLE "runs" ADD COLUMN "tenant" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
ALTER TABLE "schedules" ADD COLUMN "tenant" text DEFAULT 'default' NOT NULL;--> statement-breakpoint
CREATE INDEX "auth_denials_at_idx" ON "auth_denials" USING btree ("at");--> statement-breakpoint
CREATE INDEX "runs_tenant_created_at_idx" ON "runs" USING btree ("tenant","created_at" DESC NULLS LAST);