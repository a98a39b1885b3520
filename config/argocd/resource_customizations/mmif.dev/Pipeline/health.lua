-- Argo CD health of a mmif.dev/v1alpha1 Pipeline (long-lived: its Service-mode apps).
-- Ready (and rolled out) for the current generation -> Healthy; Stalled, or not Ready because an
-- app image cannot be pulled, an app crash-loops or a name is held by another object ->
-- Degraded; otherwise (apps starting or rolling out, a spec change not yet observed, no status
-- yet, being deleted) -> Progressing.
-- Argo CD runs it with no string library (only base, table and os): keep to `..` and table.concat.
local hs = {}

local function condition(kind)
  if obj.status ~= nil and obj.status.conditions ~= nil then
    for _, c in ipairs(obj.status.conditions) do
      if c.type == kind then
        return c
      end
    end
  end
  return nil
end

local function describe(c)
  local parts = {}
  if c.reason ~= nil and c.reason ~= "" then
    table.insert(parts, c.reason)
  end
  if c.message ~= nil and c.message ~= "" then
    table.insert(parts, c.message)
  end
  return table.concat(parts, ": ")
end

-- Not Ready for these reasons: something is wrong now, not merely starting up.
local broken = { ImagePullFailed = true, CrashLoop = true, NameConflict = true }

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  if obj.metadata.finalizers ~= nil and #obj.metadata.finalizers > 0 then
    hs.message = "Being deleted, waiting for the finalizers " .. table.concat(obj.metadata.finalizers, ", ")
  else
    hs.message = "Being deleted"
  end
  return hs
end

local ready = condition("Ready")
if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to check the pipeline's apps"
  return hs
end
local generation = obj.metadata.generation
local observed = obj.status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. generation
  return hs
end

local stalled = condition("Stalled")
local reconciling = condition("Reconciling")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
elseif ready.status == "True" and reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = describe(reconciling)
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
elseif broken[ready.reason] then
  hs.status = "Degraded"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  hs.message = describe(ready)
end
return hs
