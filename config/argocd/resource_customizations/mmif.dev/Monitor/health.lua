-- Argo CD health of a mmif.dev/v1alpha1 Monitor: the health of what it tests, which is what a
-- person looks at Argo CD for (kstatus says whether the monitor itself is reconciled). Healthy
-- (its latest test passed) -> Healthy; Degraded or Failing (its latest test, or the latest
-- ones, failed) -> Degraded, with the Ready condition's message naming what failed;
-- spec.suspend -> Suspended (as Argo CD shows a suspended CronJob); Stalled (it cannot test at
-- all) -> Degraded; no report yet, a spec change not yet observed, no status yet, being deleted
-- -> Progressing.
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
  hs.message = "Waiting for the operator to test the monitor's target"
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
local health = obj.status.health
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
elseif obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  if ready.reason == "Suspended" then
    hs.message = describe(ready)
  else
    hs.message = "Suspended (spec.suspend); " .. describe(ready)
  end
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
elseif health == "Degraded" or health == "Failing" then
  hs.status = "Degraded"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  hs.message = describe(ready)
end
return hs
