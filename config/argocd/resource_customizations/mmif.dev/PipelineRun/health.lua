-- Argo CD health of a mmif.dev/v1alpha1 PipelineRun (a bounded batch run).
-- Succeeded -> Healthy; Failed or Cancelled (Succeeded=False) -> Degraded; awaiting review ->
-- Suspended; Pending, Running, Publishing, no status yet, or being deleted -> Progressing.
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

-- "<Phase> <done>/<total>: <reason>: <message>", leaving out what is empty or repeated.
local function describe(phase, c)
  local head = phase
  if obj.status ~= nil and obj.status.progress ~= nil then
    head = head .. " " .. obj.status.progress
  end
  local parts = {}
  if head ~= "" then
    table.insert(parts, head)
  end
  if c ~= nil then
    if c.reason ~= nil and c.reason ~= "" and c.reason ~= phase then
      table.insert(parts, c.reason)
    end
    if c.message ~= nil and c.message ~= "" then
      table.insert(parts, c.message)
    end
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

local succeeded = condition("Succeeded")
local phase = ""
if obj.status ~= nil and obj.status.phase ~= nil then
  phase = obj.status.phase
end
if succeeded == nil and phase == "" then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to start the run"
  return hs
end

if succeeded ~= nil and succeeded.status == "True" then
  hs.status = "Healthy"
elseif succeeded ~= nil and succeeded.status == "False" then
  hs.status = "Degraded"
elseif phase == "AwaitingReview" or (succeeded ~= nil and succeeded.reason == "AwaitingReview") then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
hs.message = describe(phase, succeeded)
return hs
