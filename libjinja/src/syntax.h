// The template's tokens and syntax tree, shared by the lexer, the parser and the renderer.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "jinja/value.h"

namespace jinja::detail {

struct Token {
    enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, End };
    Type type;
    std::string text;  // the text, name, operator, or a string literal's value
    int line = 1;
};

// Splits the source into text and the tokens of tags, applying Jinja2's whitespace rules as
// transformers configures them (trim_blocks, lstrip_blocks, "-" on either side of a tag, the source's
// final newline dropped). Comments leave nothing.
std::vector<Token> tokenize(std::string_view source);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
    enum class Kind { Literal, Name, Attr, Item, Slice, Call, Filter, Test, Not, Neg, Binary, And, Or, List, Tuple, Dict, Cond };
    Kind kind;
    int line = 0;
    Value literal;      // Literal
    std::string name;   // Name, Attr (attribute), Filter, Test, Binary (operator)
    bool negated = false;  // Test: "is not"
    // Attr/Item/Slice/Call/Filter/Test: args[0] is the object; Item: args[1] the index; Slice: args[1..3]
    // start, stop, step (null when left out); Call/Filter/Test: args[1..] the positional arguments;
    // Binary/And/Or: the operands; List/Tuple: the elements; Dict: key, value, key, value...; Cond:
    // then, condition, else (null when left out).
    std::vector<ExprPtr> args;
    std::vector<std::pair<std::string, ExprPtr>> kwargs;  // Call/Filter/Test
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
    enum class Kind { Text, Output, If, For, Set, SetBlock, Macro, Break, Continue, Block };
    Kind kind;
    int line = 0;
    std::string text;                  // Text; Macro: its name; SetBlock: the variable
    ExprPtr expr;                      // Output; Set: the value; For: the iterable
    std::vector<ExprPtr> conditions;   // If: one per branch ("else" has none)
    std::vector<Body> branches;        // If
    std::vector<std::string> targets;  // For: the loop variables; Set: names, or {namespace, attribute}
    bool attribute_target = false;     // Set: "set ns.attr = ..."
    ExprPtr filter;                    // For: "for x in xs if filter"
    Body body, else_body;              // For, Macro, SetBlock, Block (generation)
    std::vector<std::pair<std::string, ExprPtr>> params;  // Macro: name and default (null for none)
};

// Parses the tokens into the template's top-level body; syntax errors throw jinja::Error.
Body parse(const std::vector<Token>& tokens);

}  // namespace jinja::detail
