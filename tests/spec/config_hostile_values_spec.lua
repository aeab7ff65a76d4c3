-- config_hostile_values_spec.lua (issue 14.9): every configuration key of
-- every built-in provider, given every wrong-typed or hostile value, gives a
-- clear configuration error (or is accepted) and never an internal error:
-- no message may name an engine file (".lua:"), Lua's own wording ("attempt
-- to", "stack traceback") or raise. The same check runs on the provider's
-- prepare_for_bootstrap, where provider-specific validation happens.
local context = require("juju.context")
local environments = require("juju.environs.environments")
local config = require("juju.environs.config")
local providers = require("juju.providers")
local envopen = require("juju.environs.open")
local h = require("helpers")

local VALUES = {
  "1", "-5", "0", "1.5", "true", "false", "null", "~", "''", "'   '",
  "[1, 2]", "[]", "{a: 1}", "{}", "'../../x'", "'/dev/zero'", "'\\0'",
  "'" .. string.rep("x", 5000) .. "'", "'${HOME}'", "'%s%n'", "0x10", "1e999",
}

-- What a provider needs so that the key under test is the only fault.
local BASE = {
  dummy = "",
  ["local"] = "",
  manual = "    bootstrap-host: 127.0.0.1\n",
}

local function internal(msg)
  msg = tostring(msg)
  return msg:find("%.lua:%d") or msg:find("attempt to ", 1, true) or msg:find("stack traceback", 1, true)
end

describe("hostile configuration values", function()
  after_each(function() h.cleanup(); collectgarbage() end)

  for _, ptype in ipairs({ "dummy", "local", "manual" }) do
    it("never give an internal error for any key of the " .. ptype .. " provider", function()
      local home = h.tmpdir()
      local provider = assert(providers.load(home, ptype))
      local schema = assert(config.schema_for(provider))
      local keys = schema:fields()
      assert.is_true(#keys > 20)
      local checked, refused = 0, 0
      for _, key in ipairs(keys) do
        if key ~= "type" and key ~= "name" then
          for _, v in ipairs(VALUES) do
            local text = string.format("environments:\n  e:\n    type: %s\n%s    %s: %s\n", ptype, BASE[ptype], key, v)
            local errs = {}
            local ctx = context.new { env = { HOME = home .. "/user", JUJU_HOME = home },
              stdout = function() end, stderr = function(s) errs[#errs + 1] = s end }
            local envs, perr = environments.parse(text, "environments.yaml")
            local where = key .. ": " .. v:sub(1, 40)
            if not envs then
              assert.is_falsy(internal(perr), where .. " -> " .. tostring(perr))
            else
              local ok, cfg, err = pcall(function()
                local attrs, marks = envs:attrs("e")
                return config.from_environments(ctx, attrs, marks, {
                  file = "environments.yaml", home = home, provider = provider })
              end)
              assert.is_true(ok, where .. " raised: " .. tostring(cfg))
              if cfg then
                -- What prepare does next (juju.environs.prepare): the
                -- provider's prepare_for_bootstrap, then opening it.
                cfg.uuid = cfg.uuid or "1b2c3d4e-0000-4000-8000-000000000000"
                local pc = context.provider(ctx, { home = home, env_name = "e", cfg = cfg, provider_name = ptype })
                local pok, pcfg, perr2 = pcall(provider.prepare_for_bootstrap, pc, cfg)
                assert.is_true(pok, where .. " prepare_for_bootstrap raised: " .. tostring(pcfg))
                if pcfg then
                  local ook, o, oerr = pcall(envopen.with_config, ctx, home, "e", provider, pcfg)
                  assert.is_true(ook, where .. " open raised: " .. tostring(o))
                  if not o then
                    refused = refused + 1
                    assert.is_falsy(internal(oerr), where .. " -> " .. tostring(oerr))
                  end
                else
                  refused = refused + 1
                  assert.is_falsy(internal(perr2), where .. " -> " .. tostring(perr2))
                end
              else
                refused = refused + 1
                assert.is_string(err, where)
                assert.is_falsy(internal(err), where .. " -> " .. err)
              end
              assert.is_falsy(internal(table.concat(errs)), where .. " logged: " .. table.concat(errs))
              checked = checked + 1
            end
          end
        end
      end
      -- Most wrong-typed values must be refused, not silently accepted.
      assert.is_true(refused > checked / 3, string.format("%d of %d refused", refused, checked))
    end)
  end
end)
