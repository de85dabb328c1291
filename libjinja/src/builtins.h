// The filters, tests, Python methods and indexing rules chat templates use, with Python's meaning.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "jinja/value.h"

namespace jinja::detail {

// Applies filter `name` to `input`; `apply_filter` lets map() call another filter by name.
Value call_filter(const std::string& name, const Value& input, const CallArgs& args);
// Test `name` ("defined", "string", "divisibleby"...) on `v`.
bool call_test(const std::string& name, const Value& v, const CallArgs& args);
// A method of a str or dict ("strip", "split", "items", "get"...); throws Error when there is none.
Value call_method(const Value& obj, const std::string& name, const CallArgs& args);
bool has_method(const Value& obj, const std::string& name);

// obj.name and obj[key] as Jinja2 resolves them: dict keys, list and string indices (negative from
// the end); what is missing is undefined, but anything of an undefined value is an error.
Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value get_slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

// Iteration as Python's: list items, dict keys, a string's characters; undefined iterates as empty.
std::vector<Value> iterate(const Value& v);
// Python's ordering for sort() and <: numbers with numbers, strings with strings, lists element by
// element; anything else is an Error.
int compare(const Value& a, const Value& b);
// A string's characters (UTF-8 code points) as strings.
std::vector<std::string> code_points(const std::string& s);

}  // namespace jinja::detail
