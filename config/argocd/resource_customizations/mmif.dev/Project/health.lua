-- Argo CD health of a mmif.dev/v1alpha1 Project (cluster-scoped, long-lived: its namespace and
-- role bindings). Ready for the current generation -> Healthy, Open or Closed (closing is a state
-- the project is meant to reach, not a fault; the Ready message names it); Stalled (a namespace of its name it did not make,
-- a spec the operator cannot read) -> Degraded; otherwise (the namespace being made, a spec change
-- not yet observed, no status yet, being deleted) -> Progressing.
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
  hs.message = "Waiting for the operator to make the project's namespace"
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
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = describe(stalled)
elseif ready.status == "True" then
  hs.status = "Healthy"
  hs.message = describe(ready)
else
  hs.status = "Progressing"
  hs.message = describe(ready)
end
return hs
