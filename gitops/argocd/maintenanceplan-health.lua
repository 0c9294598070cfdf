-- Argo CD health check for cutover.dev/MaintenancePlan.
--
-- Argo CD runs this body with the live object in the global `obj` and reads the table it
-- returns. Argo CD opens only the base, table and os libraries for custom health checks
-- (no string library), so this script uses nothing else. Lua 5.1.
--
-- Mapping (message: the phase, then ": " and status.message when the operator gave one):
--   no status, or status.observedGeneration != metadata.generation
--                         -> Progressing  "waiting for the operator": the status describes an
--                            older spec (or none), so it says nothing about the current one
--   Pending               -> Progressing  (Suspended when spec.paused: held before its first step)
--   Progressing           -> Progressing  (Suspended when spec.paused: held before the next step)
--   AwaitingPromotion     -> Suspended    green is Ready; nothing moves until spec.promote: true
--   Succeeded             -> Healthy
--   Failed, Rejected      -> Degraded     stopped without doing the change; a person must act
--   Aborted               -> Degraded     a plan is one-shot: an aborted plan never resumes, and
--                                          the target did not get the change Git asked for.
--                                          Suspended would say "waiting to be resumed", which
--                                          nothing can do (Argo Rollouts reports its aborted
--                                          rollouts as Degraded too)
--   any other phase       -> Degraded     this check is older than the operator: update it
-- Missing is never returned here: Argo CD reports a plan that does not exist by itself.

local hs = {}

local function verdict(status, message)
  hs.status = status
  hs.message = message
  return hs
end

-- Numbers may arrive as numbers or as strings, depending on how the object was decoded.
local function same(a, b)
  return a ~= nil and b ~= nil and tostring(a) == tostring(b)
end

local status = obj.status
local metadata = obj.metadata or {}
local spec = obj.spec or {}

if status == nil or status.observedGeneration == nil then
  return verdict("Progressing", "waiting for the operator")
end
if metadata.generation ~= nil and not same(status.observedGeneration, metadata.generation) then
  return verdict("Progressing", "waiting for the operator: generation " ..
    tostring(metadata.generation) .. " not observed yet (status is of generation " ..
    tostring(status.observedGeneration) .. ")")
end

local phase = status.phase
if phase == nil or phase == "" then
  return verdict("Progressing", "waiting for the operator")
end

local message = phase
if status.message ~= nil and status.message ~= "" then
  message = phase .. ": " .. tostring(status.message)
end

local paused = spec.paused == true

if phase == "Pending" or phase == "Progressing" then
  if paused then
    return verdict("Suspended", message)
  end
  return verdict("Progressing", message)
end
if phase == "AwaitingPromotion" then
  return verdict("Suspended", message)
end
if phase == "Succeeded" then
  return verdict("Healthy", message)
end
if phase == "Failed" or phase == "Rejected" or phase == "Aborted" then
  return verdict("Degraded", message)
end
return verdict("Degraded", message .. " (phase unknown to this health check; update it)")
