import { Permission } from "./principal.js";

/**
 * The permission each HubService RPC needs, by method name as the service
 * descriptor spells it. Deny by default: an RPC not in this table is refused
 * for everyone (test/auth.test.ts checks every method of the service is here).
 */
export const RPC_PERMISSIONS: Readonly<Record<string, Permission>> = {
  SubmitRun: Permission.Submit,
  GetRun: Permission.Read,
  ListRuns: Permission.Read,
  ListTasks: Permission.Read,
  GetTask: Permission.Read,
  WatchRun: Permission.Read,
  GetLogs: Permission.Read,
  GetAudit: Permission.Read,
  CancelRun: Permission.Cancel,
  GetTaskStates: Permission.Worker,
  SpawnTasks: Permission.Task,
  GetChildren: Permission.Worker,
  GetTaskInput: Permission.Worker,
  PutTaskOutput: Permission.Worker,
  PutSchedules: Permission.Schedule,
  ListSchedules: Permission.Read,
  DeleteSchedule: Permission.Schedule,
  PauseSchedule: Permission.Schedule,
  ResumeSchedule: Permission.Schedule,
  TriggerSchedule: Permission.Schedule,
  GetScheduleHistory: Permission.Read,
  BackfillSchedule: Permission.Schedule,
  // over every tenant's record: admin only
  Query: Permission.Admin,
  GetStats: Permission.Admin,
  ExportDay: Permission.Admin,
  ListHosts: Permission.Admin,
  GetHostHistory: Permission.Admin,
  CommitMapReduce: Permission.Task,
};

export function permissionOf(method: string): Permission | undefined {
  return Object.hasOwn(RPC_PERMISSIONS, method) ? RPC_PERMISSIONS[method] : undefined;
}
