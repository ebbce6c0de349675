-- junction.inflect: English singular and plural for association names, and
-- snake_case for method names.  Case is kept: "Categories" -> "Category".
local M = {}

local irregular = {
  person = "people", man = "men", woman = "women", child = "children",
  mouse = "mice", goose = "geese", foot = "feet", tooth = "teeth", ox = "oxen",
}
local uncountable = {
  sheep = true, fish = true, series = true, species = true, deer = true,
  information = true, equipment = true, news = true, data = true, media = true,
}
local singular_of = { movies = "movie", cookies = "cookie", zombies = "zombie", pies = "pie", ties = "tie" }
for s, p in pairs(irregular) do singular_of[p] = s end

-- Give replacement the case of word's first letter.
local function keep_case(word, replacement)
  if word:sub(1, 1):match("%u") then
    return replacement:sub(1, 1):upper() .. replacement:sub(2)
  end
  return replacement
end

-- Split "BlogPost" into "Blog" and "Post": only the last word is inflected.
local function split_last(word)
  local head, last = word:match("^(.-)(%u[%l%d]*)$")
  if not head or last == "" then return "", word end
  return head, last
end

local function check_word(fn, word)
  if type(word) ~= "string" then
    error("junction.inflect." .. fn .. ": bad argument #1 (string expected, got " .. type(word) .. ")", 3)
  end
end

function M.plural(word)
  check_word("plural", word)
  local head, last = split_last(word)
  local low = last:lower()
  if uncountable[low] then return word end
  if irregular[low] then return head .. keep_case(last, irregular[low]) end
  if low:match("[^aeiou]y$") then return head .. last:sub(1, -2) .. "ies" end
  if low:match("[sxz]$") or low:match("[cs]h$") then return head .. last .. "es" end
  if low:match("[^f]fe$") then return head .. last:sub(1, -3) .. "ves" end
  if low:match("[lr]f$") then return head .. last:sub(1, -2) .. "ves" end
  return head .. last .. "s"
end

function M.singular(word)
  check_word("singular", word)
  local head, last = split_last(word)
  local low = last:lower()
  if uncountable[low] then return word end
  if singular_of[low] then return head .. keep_case(last, singular_of[low]) end
  if low:match("ies$") and #low > 4 then return head .. last:sub(1, -4) .. "y" end
  if low:match("[lr]ves$") then return head .. last:sub(1, -4) .. "f" end
  if low:match("ives$") then return head .. last:sub(1, -4) .. "fe" end
  if low:match("[sxz]es$") or low:match("[cs]hes$") then
    if low:match("[^s]ses$") and not low:match("uses$") then return head .. last:sub(1, -2) end
    return head .. last:sub(1, -3)
  end
  if low:match("ss$") or low:match("us$") or low:match("is$") then return word end
  if low:match("s$") then return head .. last:sub(1, -2) end
  return word
end

-- "findByPk" -> "find_by_pk", "setGenres" -> "set_genres", "parseHTTPReply" -> "parse_http_reply"
function M.snake(name)
  check_word("snake", name)
  local s = name:gsub("(%u+)(%u%l)", "%1_%2"):gsub("([%l%d])(%u)", "%1_%2")
  return s:lower()
end

return M
