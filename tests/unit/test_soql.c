/* Unit tests for internal/soql: assignment filters (provisioning.md R3.4, R4.1-R4.3). Suites are
 * named after the rule they check; each test has one focus. The clock is fixed at
 * 2024-05-15T12:00:00Z, a Wednesday, so that relative date literals have known ranges (weeks start
 * on Sunday: this week is 2024-05-12..2024-05-18). */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "soql/soql.h"

#define NOW_MS 1715774400000LL /* 2024-05-15T12:00:00Z */

static const soql_clock utc = {NOW_MS, 0};

typedef struct fv {
    const char *name;
    value_t v;
} fv;

#define S(x) value_str(x)
#define N(x) value_num(x)
#define B(x) value_bool(x)
#define NUL value_null()

/* Compiles (must succeed) and evaluates against a record given as name/value pairs; fields the
 * record lacks are null. */
static soql_truth eval_rec(const char *filter, const fv *rec, size_t n, const soql_clock *clock)
{
    soql_filter *f;
    perr err = {{0}};
    if (soql_compile(filter, &f, &err) < 0)
        cr_assert_fail("'%s' did not compile: %s", filter, err.msg);
    value_t vals[16];
    cr_assert_leq(soql_field_count(f), 16);
    for (size_t i = 0; i < soql_field_count(f); i++) {
        vals[i] = value_null();
        for (size_t k = 0; k < n; k++)
            if (str_ieq(rec[k].name, soql_field_name(f, i))) vals[i] = rec[k].v;
    }
    soql_truth t = soql_eval(f, vals, clock);
    soql_free(f);
    return t;
}

#define EV(filter, ...)                                                                            \
    eval_rec(filter, (fv[]){__VA_ARGS__}, sizeof((fv[]){__VA_ARGS__}) / sizeof(fv), &utc)
#define EVC(clock, filter, ...)                                                                    \
    eval_rec(filter, (fv[]){__VA_ARGS__}, sizeof((fv[]){__VA_ARGS__}) / sizeof(fv), clock)
#define EV0(filter) eval_rec(filter, NULL, 0, &utc)

/* The error message of a filter that must not compile. */
static char errbuf[1024];
static const char *cerr(const char *filter)
{
    soql_filter *f = (soql_filter *)0x1;
    perr err = {{0}};
    if (soql_compile(filter, &f, &err) == 0) {
        soql_free(f);
        return "(compiled)";
    }
    cr_assert_null(f, "out must be NULL on failure");
    snprintf(errbuf, sizeof errbuf, "%s", err.msg);
    return errbuf;
}

static bool compiles(const char *filter)
{
    soql_filter *f;
    perr err;
    if (soql_compile(filter, &f, &err) < 0) return false;
    soql_free(f);
    return true;
}

#define T SOQL_TRUE
#define F SOQL_FALSE
#define U SOQL_UNKNOWN

/* ================= R3.4: empty filter, API contract ================= */

Test(soql_r3_4, empty_filter_matches_everyone) { cr_assert_eq(EV0(""), T); }
Test(soql_r3_4, blank_filter_matches_everyone) { cr_assert_eq(EV0("  \t\n "), T); }
Test(soql_r3_4, null_text_matches_everyone) { cr_assert_eq(EV0(NULL), T); }

Test(soql_r3_4, empty_filter_reads_no_field)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("", &f, &err), 0);
    cr_assert_eq(soql_field_count(f), 0);
    soql_free(f);
}

Test(soql_r3_4, unknown_result_is_not_true)
{
    /* R3.4: only TRUE matches; a comparison with a null field is UNKNOWN. */
    cr_assert_eq(EV("Title = 'CEO'", {"Title", NUL}), U);
}

Test(soql_r3_4, free_null_is_harmless) { soql_free(NULL); }

Test(soql_r3_4, eval_with_null_values_reads_nulls)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("Title = null", &f, &err), 0);
    cr_assert_eq(soql_eval(f, NULL, &utc), T);
    soql_free(f);
}

/* ================= R4.1: field references ================= */

Test(soql_r4_1_fields, listed_in_order_of_first_appearance)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("Title = 'a' AND Department = 'b' AND Country = 'c'", &f, &err), 0);
    cr_assert_eq(soql_field_count(f), 3);
    cr_assert_str_eq(soql_field_name(f, 0), "Title");
    cr_assert_str_eq(soql_field_name(f, 1), "Department");
    cr_assert_str_eq(soql_field_name(f, 2), "Country");
    soql_free(f);
}

Test(soql_r4_1_fields, names_are_case_insensitive_one_field)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("Title = 'a' OR title = 'b' OR TITLE = 'c'", &f, &err), 0);
    cr_assert_eq(soql_field_count(f), 1);
    cr_assert_str_eq(soql_field_name(f, 0), "Title", "spelled as first written");
    soql_free(f);
}

Test(soql_r4_1_fields, name_out_of_range_is_null)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("Title = 'a'", &f, &err), 0);
    cr_assert_null(soql_field_name(f, 1));
    soql_free(f);
}

Test(soql_r4_1_fields, custom_field_names)
{
    cr_assert_eq(EV("ns__Region__c = 'EMEA'", {"ns__Region__c", S("emea")}), T);
}

Test(soql_r4_3, dotted_path_kept_whole)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("Profile.Name = 'Sales User'", &f, &err), 0);
    cr_assert_str_eq(soql_field_name(f, 0), "Profile.Name");
    soql_free(f);
}

Test(soql_r4_3, relationship_path_needs_lookups)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("IsActive = true AND Manager.Email LIKE '%@x.com'", &f, &err), 0);
    cr_assert(soql_needs_relationships(f));
    soql_free(f);
}

Test(soql_r4_3, relationship_paths_classified)
{
    const char *leaf;
    cr_assert_eq(soql_relationship("Title", &leaf), SOQL_REL_NONE);
    cr_assert_str_eq(leaf, "Title");
    cr_assert_eq(soql_relationship("profile.Name", &leaf), SOQL_REL_PROFILE);
    cr_assert_str_eq(leaf, "Name");
    cr_assert_eq(soql_relationship("UserRole.DeveloperName", &leaf), SOQL_REL_USERROLE);
    cr_assert_str_eq(leaf, "DeveloperName");
    cr_assert_eq(soql_relationship("MANAGER.Email", &leaf), SOQL_REL_MANAGER);
    cr_assert_str_eq(leaf, "Email");
    cr_assert_str_eq(soql_relationship_key(SOQL_REL_MANAGER), "ManagerId");
    cr_assert_str_eq(soql_relationship_key(SOQL_REL_USERROLE), "UserRoleId");
    cr_assert_eq(soql_relationship("Account.Name", &leaf), SOQL_REL_UNSUPPORTED);
    cr_assert_eq(soql_relationship("Manager.Profile.Name", NULL), SOQL_REL_UNSUPPORTED);
    cr_assert_eq(soql_relationship("Managers.Email", NULL), SOQL_REL_UNSUPPORTED);
    cr_assert_eq(soql_relationship("Profile.", NULL), SOQL_REL_UNSUPPORTED);
    cr_assert_null(soql_relationship_key(SOQL_REL_UNSUPPORTED));
}

Test(soql_r4_3, plain_fields_need_no_lookups)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("IsActive = true AND Email LIKE '%@x.com'", &f, &err), 0);
    cr_assert_not(soql_needs_relationships(f));
    soql_free(f);
}

Test(soql_r4_3, dotted_path_case_insensitive_dedup)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("Profile.Name = 'a' OR profile.name = 'b'", &f, &err), 0);
    cr_assert_eq(soql_field_count(f), 1);
    soql_free(f);
}

/* ================= R4.1: comparison operators ================= */

Test(soql_r4_1_ops, eq_string)
{
    cr_assert_eq(EV("Department = 'Sales'", {"Department", S("Sales")}), T);
}
Test(soql_r4_1_ops, eq_string_mismatch)
{
    cr_assert_eq(EV("Department = 'Sales'", {"Department", S("Support")}), F);
}
Test(soql_r4_1_ops, ne_bang)
{
    cr_assert_eq(EV("Department != 'Sales'", {"Department", S("Support")}), T);
}
Test(soql_r4_1_ops, ne_bang_false)
{
    cr_assert_eq(EV("Department != 'Sales'", {"Department", S("SALES")}), F);
}
Test(soql_r4_1_ops, ne_angle)
{
    cr_assert_eq(EV("Department <> 'Sales'", {"Department", S("Support")}), T);
}
Test(soql_r4_1_ops, lt_number) { cr_assert_eq(EV("Level < 5", {"Level", N(4)}), T); }
Test(soql_r4_1_ops, lt_number_equal_is_false) { cr_assert_eq(EV("Level < 5", {"Level", N(5)}), F); }
Test(soql_r4_1_ops, le_number) { cr_assert_eq(EV("Level <= 5", {"Level", N(5)}), T); }
Test(soql_r4_1_ops, gt_number) { cr_assert_eq(EV("Level > 5", {"Level", N(5.5)}), T); }
Test(soql_r4_1_ops, ge_number) { cr_assert_eq(EV("Level >= 5", {"Level", N(5)}), T); }
Test(soql_r4_1_ops, ge_number_below) { cr_assert_eq(EV("Level >= 5", {"Level", N(4.999)}), F); }
Test(soql_r4_1_ops, operators_without_spaces) { cr_assert_eq(EV("Level>=5", {"Level", N(7)}), T); }

/* ================= R4.1: case rules ================= */

Test(soql_r4_1_case, eq_ignores_case)
{
    cr_assert_eq(EV("Department = 'SALES'", {"Department", S("sales")}), T);
}
Test(soql_r4_1_case, ne_ignores_case)
{
    cr_assert_eq(EV("Department != 'sales'", {"Department", S("Sales")}), F);
}
Test(soql_r4_1_case, in_ignores_case)
{
    cr_assert_eq(EV("Country IN ('us', 'ca')", {"Country", S("US")}), T);
}
Test(soql_r4_1_case, like_ignores_case)
{
    cr_assert_eq(EV("Title LIKE '%MANAGER%'", {"Title", S("Sales manager")}), T);
}
Test(soql_r4_1_case, lt_on_strings_ignores_case)
{
    /* 'apple' < 'Banana' when case is ignored, though 'B' (0x42) < 'a' (0x61) byte-wise. */
    cr_assert_eq(EV("Name < 'Banana'", {"Name", S("apple")}), T);
}
Test(soql_r4_1_case, gt_on_strings) { cr_assert_eq(EV("Name > 'm'", {"Name", S("Zed")}), T); }
Test(soql_r4_1_case, latin_greek_cyrillic_letters_fold)
{
    /* R4.1 "ignores case": Unicode simple case folding of two-byte UTF-8 letters */
    cr_assert_eq(EV("City = 'école'", {"City", S("École")}), T);
    cr_assert_eq(EV("City = 'ÉCOLE'", {"City", S("école")}), T);
    cr_assert_eq(EV("City != 'ÉCOLE'", {"City", S("école")}), F);
    cr_assert_eq(EV("City = 'łódź'", {"City", S("ŁÓDŹ")}), T);
    cr_assert_eq(EV("City = 'αθήνα'", {"City", S("ΑΘΉΝΑ")}), T);
    cr_assert_eq(EV("City = 'москва'", {"City", S("МОСКВА")}), T);
    cr_assert_eq(EV("City = 'ёж'", {"City", S("ЁЖ")}), T);
    cr_assert_eq(EV("City IN ('x', 'ÅRHUS')", {"City", S("århus")}), T);
    cr_assert_eq(EV("City LIKE 'é%'", {"City", S("École")}), T);
    cr_assert_eq(EV("City LIKE '%ÜRICH'", {"City", S("zürich")}), T);
    cr_assert_eq(EV("City LIKE '%ÖLN%'", {"City", S("Köln am Rhein")}), T);
    cr_assert_eq(EV("City LIKE '_cole'", {"City", S("École")}), T);
    cr_assert_eq(EV("City LIKE 'm_skv_'", {"City", S("МОСКВА")}), F, "Latin m is not Cyrillic м");
    cr_assert_eq(EV("Regions__c INCLUDES ('ÎLE')", {"Regions__c", S("Nord; île")}), T);
}

Test(soql_r4_1_case, other_characters_compared_exactly)
{
    cr_assert_eq(EV("City = 'e'", {"City", S("é")}), F, "accents matter");
    cr_assert_eq(EV("City = 'strasse'", {"City", S("straße")}), F, "no multi-letter folding");
    cr_assert_eq(EV("City = '東京'", {"City", S("東京")}), T);
    cr_assert_eq(EV("City = '×'", {"City", S("÷")}), F, "signs are not letters");
}
Test(soql_r4_1_case, non_ascii_same_bytes_equal)
{
    cr_assert_eq(EV("City = 'Zürich'", {"City", S("zürich")}), T);
}
Test(soql_r4_1_case, keywords_case_insensitive)
{
    cr_assert_eq(EV("where a = 1 and not b like 'x%' and c in (1) and d not in (2)", {"a", N(1)},
                    {"b", S("y")}, {"c", N(1)}, {"d", N(3)}),
                 T);
}
/* a field whose name starts like a keyword is a field (a blind review's scenario, kept here: its
 * custom fields are not in the bundled Avro schema every scenario travels through) */
Test(soql_r4_1_case, keyword_prefixed_field_names)
{
    cr_assert_eq(
        EV("ORacle__c = 'x' AND ANDroid__c = 'y'", {"ORacle__c", S("x")}, {"ANDroid__c", S("y")}),
        T);
    cr_assert_eq(EV("NOTes__c = 'z' OR INfo__c = 'w'", {"NOTes__c", S("q")}, {"INfo__c", S("w")}),
                 T);
    cr_assert_eq(EV("NULLable__c = null AND Trueish__c != null", {"NULLable__c", value_null()},
                    {"Trueish__c", S("t")}),
                 T);
    cr_assert_eq(EV("LIKEly__c LIKE 'a%'", {"LIKEly__c", S("abc")}), T);
}
Test(soql_r4_1_case, true_false_null_case_insensitive)
{
    cr_assert_eq(
        EV("IsActive = TRUE AND x = False AND y = NULL", {"IsActive", B(true)}, {"x", B(false)}),
        T);
}
Test(soql_r4_1_case, date_literal_case_insensitive)
{
    cr_assert_eq(EV("d = today", {"d", S("2024-05-15")}), T);
}

/* ================= R4.1: LIKE ================= */

Test(soql_r4_1_like, prefix)
{
    cr_assert_eq(EV("Title LIKE 'Sales%'", {"Title", S("Sales Director")}), T);
}
Test(soql_r4_1_like, prefix_mismatch)
{
    cr_assert_eq(EV("Title LIKE 'Sales%'", {"Title", S("VP Sales")}), F);
}
Test(soql_r4_1_like, suffix)
{
    cr_assert_eq(EV("Email LIKE '%@acme.com'", {"Email", S("a@ACME.com")}), T);
}
Test(soql_r4_1_like, contains)
{
    cr_assert_eq(EV("Title LIKE '%engineer%'", {"Title", S("Senior Engineer II")}), T);
}
Test(soql_r4_1_like, contains_inside_word)
{
    cr_assert_eq(EV("Title LIKE '%engineer%'", {"Title", S("Engineering")}), T);
}
Test(soql_r4_1_like, exact_is_whole_string)
{
    cr_assert_eq(EV("Title LIKE 'CEO'", {"Title", S("CEO of X")}), F);
}
Test(soql_r4_1_like, percent_alone_matches_any_value)
{
    cr_assert_eq(EV("Title LIKE '%'", {"Title", S("x")}), T);
}
Test(soql_r4_1_like, underscore_is_one_char)
{
    cr_assert_eq(EV("Code LIKE 'A_C'", {"Code", S("abc")}), T);
}
Test(soql_r4_1_like, underscore_not_zero_chars)
{
    cr_assert_eq(EV("Code LIKE 'A_C'", {"Code", S("AC")}), F);
}
Test(soql_r4_1_like, underscore_one_utf8_char)
{
    cr_assert_eq(EV("Name LIKE 'Ren_'", {"Name", S("René")}), T);
}
Test(soql_r4_1_like, general_pattern_backtracks)
{
    cr_assert_eq(EV("Title LIKE '%a%b_c%'", {"Title", S("xxaxxbxbzcyy")}), T);
}
Test(soql_r4_1_like, general_pattern_mismatch)
{
    cr_assert_eq(EV("Title LIKE 'd%r_x'", {"Title", S("director")}), F);
}
Test(soql_r4_1_like, escaped_percent_is_literal)
{
    cr_assert_eq(EV("Rate LIKE '100\\%'", {"Rate", S("100%")}), T);
}
Test(soql_r4_1_like, escaped_percent_not_wildcard)
{
    cr_assert_eq(EV("Rate LIKE '100\\%'", {"Rate", S("1000")}), F);
}
Test(soql_r4_1_like, escaped_underscore_is_literal)
{
    cr_assert_eq(EV("Code LIKE 'a\\_b%'", {"Code", S("a_bc")}), T);
}
Test(soql_r4_1_like, escaped_underscore_not_wildcard)
{
    cr_assert_eq(EV("Code LIKE 'a\\_b'", {"Code", S("axb")}), F);
}
Test(soql_r4_1_like, escaped_backslash_in_pattern)
{
    cr_assert_eq(EV("Path LIKE 'a\\\\%'", {"Path", S("a\\b")}), T);
}
Test(soql_r4_1_like, null_field_unknown) { cr_assert_eq(EV("Title LIKE '%'", {"Title", NUL}), U); }
Test(soql_r4_1_like, number_field_unknown)
{
    cr_assert_eq(EV("Level LIKE '1%'", {"Level", N(12)}), U);
}
Test(soql_r4_1_like, not_like)
{
    cr_assert_eq(EV("NOT Title LIKE '%intern%'", {"Title", S("Engineer")}), T);
}

/* ================= R4.1: IN / NOT IN ================= */

Test(soql_r4_1_in, in_match)
{
    cr_assert_eq(EV("Country IN ('US', 'CA', 'GB')", {"Country", S("CA")}), T);
}
Test(soql_r4_1_in, in_no_match)
{
    cr_assert_eq(EV("Country IN ('US', 'CA', 'GB')", {"Country", S("FR")}), F);
}
Test(soql_r4_1_in, in_numbers) { cr_assert_eq(EV("Level IN (1, 2, 3)", {"Level", N(2)}), T); }
Test(soql_r4_1_in, in_single_value)
{
    cr_assert_eq(EV("Country IN ('US')", {"Country", S("us")}), T);
}
Test(soql_r4_1_in, not_in_match)
{
    cr_assert_eq(EV("Country NOT IN ('US', 'CA')", {"Country", S("FR")}), T);
}
Test(soql_r4_1_in, not_in_excluded)
{
    cr_assert_eq(EV("Country NOT IN ('US', 'CA')", {"Country", S("us")}), F);
}
Test(soql_r4_1_in, in_dates)
{
    cr_assert_eq(EV("d IN (2024-01-01, 2024-05-15)", {"d", S("2024-05-15")}), T);
}

/* ================= R4.1: INCLUDES / EXCLUDES ================= */

Test(soql_r4_1_picklist, includes_one)
{
    cr_assert_eq(EV("Skills__c INCLUDES ('Java')", {"Skills__c", S("C;Java;Go")}), T);
}
Test(soql_r4_1_picklist, includes_none)
{
    cr_assert_eq(EV("Skills__c INCLUDES ('Rust')", {"Skills__c", S("C;Java;Go")}), F);
}
Test(soql_r4_1_picklist, includes_any_of_list)
{
    cr_assert_eq(EV("Skills__c INCLUDES ('Rust', 'go')", {"Skills__c", S("C;Java;Go")}), T);
}
Test(soql_r4_1_picklist, includes_semicolon_means_all)
{
    cr_assert_eq(EV("Skills__c INCLUDES ('Java;Go')", {"Skills__c", S("Go;C;Java")}), T);
}
Test(soql_r4_1_picklist, includes_semicolon_all_required)
{
    cr_assert_eq(EV("Skills__c INCLUDES ('Java;Rust')", {"Skills__c", S("Go;C;Java")}), F);
}
Test(soql_r4_1_picklist, includes_and_or_mix)
{
    /* ('a;b','c'): both a and b, or c. */
    cr_assert_eq(EV("m INCLUDES ('a;b', 'c')", {"m", S("c")}), T);
}
Test(soql_r4_1_picklist, includes_trims_spaces)
{
    cr_assert_eq(EV("m INCLUDES (' b ; a ')", {"m", S("a ; b")}), T);
}
Test(soql_r4_1_picklist, includes_whole_values_only)
{
    cr_assert_eq(EV("m INCLUDES ('Jav')", {"m", S("Java")}), F);
}
Test(soql_r4_1_picklist, excludes_absent)
{
    cr_assert_eq(EV("m EXCLUDES ('Rust')", {"m", S("C;Java")}), T);
}
Test(soql_r4_1_picklist, excludes_present)
{
    cr_assert_eq(EV("m EXCLUDES ('java')", {"m", S("C;Java")}), F);
}
Test(soql_r4_1_picklist, excludes_all_of_semicolon)
{
    /* EXCLUDES ('a;b') is true unless the field has both. */
    cr_assert_eq(EV("m EXCLUDES ('C;Rust')", {"m", S("C;Java")}), T);
}
Test(soql_r4_1_picklist, includes_null_unknown)
{
    cr_assert_eq(EV("m INCLUDES ('a')", {"m", NUL}), U);
}
Test(soql_r4_1_picklist, excludes_null_unknown)
{
    cr_assert_eq(EV("m EXCLUDES ('a')", {"m", NUL}), U);
}

/* ================= R4.1: AND / OR / NOT / parentheses ================= */

Test(soql_r4_1_logic, and_all_true)
{
    cr_assert_eq(EV("a = 1 AND b = 2 AND c = 3", {"a", N(1)}, {"b", N(2)}, {"c", N(3)}), T);
}
Test(soql_r4_1_logic, and_one_false)
{
    cr_assert_eq(EV("a = 1 AND b = 2 AND c = 3", {"a", N(1)}, {"b", N(0)}, {"c", N(3)}), F);
}
Test(soql_r4_1_logic, or_one_true)
{
    cr_assert_eq(EV("a = 1 OR b = 2 OR c = 3", {"a", N(0)}, {"b", N(0)}, {"c", N(3)}), T);
}
Test(soql_r4_1_logic, or_all_false)
{
    cr_assert_eq(EV("a = 1 OR b = 2", {"a", N(0)}, {"b", N(0)}), F);
}
Test(soql_r4_1_logic, not_negates) { cr_assert_eq(EV("NOT a = 1", {"a", N(2)}), T); }
Test(soql_r4_1_logic, not_binds_to_next_condition)
{
    /* (NOT a = 1) AND b = 2, not NOT (a = 1 AND b = 2). */
    cr_assert_eq(EV("NOT a = 1 AND b = 2", {"a", N(2)}, {"b", N(3)}), F);
}
Test(soql_r4_1_logic, not_of_parenthesis)
{
    cr_assert_eq(EV("NOT (a = 1 AND b = 2)", {"a", N(1)}, {"b", N(3)}), T);
}
Test(soql_r4_1_logic, double_not) { cr_assert_eq(EV("NOT NOT a = 1", {"a", N(1)}), T); }
Test(soql_r4_1_logic, parentheses_group_or_inside_and)
{
    cr_assert_eq(EV("a = 1 AND (b = 2 OR c = 3)", {"a", N(1)}, {"b", N(0)}, {"c", N(3)}), T);
}
Test(soql_r4_1_logic, parentheses_group_and_inside_or)
{
    cr_assert_eq(EV("(a = 1 AND b = 2) OR c = 3", {"a", N(1)}, {"b", N(0)}, {"c", N(0)}), F);
}
Test(soql_r4_1_logic, nested_parentheses) { cr_assert_eq(EV("((((a = 1))))", {"a", N(1)}), T); }
Test(soql_r4_1_logic, optional_where) { cr_assert_eq(EV("WHERE a = 1", {"a", N(1)}), T); }
Test(soql_r4_1_logic, and_and_chain_compiles)
{
    cr_assert(compiles("a = 1 AND b = 2 AND c = 3 AND d = 4"));
}
Test(soql_r4_1_logic, or_or_chain_compiles) { cr_assert(compiles("a = 1 OR b = 2 OR c = 3")); }
Test(soql_r4_1_logic, mixed_with_parentheses_compiles)
{
    cr_assert(compiles("(a = 1 AND b = 2) OR (c = 3 AND NOT d = 4)"));
}

/* Kleene logic (R3.4): x is UNKNOWN below (a comparison on a null field). */
Test(soql_r3_4_kleene, and_unknown_true_is_unknown)
{
    cr_assert_eq(EV("x = 1 AND a = 1", {"a", N(1)}), U);
}
Test(soql_r3_4_kleene, and_unknown_false_is_false)
{
    cr_assert_eq(EV("x = 1 AND a = 1", {"a", N(2)}), F);
}
Test(soql_r3_4_kleene, or_unknown_true_is_true)
{
    cr_assert_eq(EV("x = 1 OR a = 1", {"a", N(1)}), T);
}
Test(soql_r3_4_kleene, or_unknown_false_is_unknown)
{
    cr_assert_eq(EV("x = 1 OR a = 1", {"a", N(2)}), U);
}
Test(soql_r3_4_kleene, not_unknown_is_unknown) { cr_assert_eq(EV0("NOT x = 1"), U); }

/* ================= R4.1 / R3.4: null semantics ================= */

Test(soql_r4_1_null, eq_null_on_null) { cr_assert_eq(EV("Title = null", {"Title", NUL}), T); }
Test(soql_r4_1_null, eq_null_on_value) { cr_assert_eq(EV("Title = null", {"Title", S("CEO")}), F); }
Test(soql_r4_1_null, ne_null_on_value)
{
    cr_assert_eq(EV("Title != null", {"Title", S("CEO")}), T);
}
Test(soql_r4_1_null, ne_null_on_null) { cr_assert_eq(EV("Title != null", {"Title", NUL}), F); }
Test(soql_r4_1_null, eq_value_on_null_is_unknown)
{
    cr_assert_eq(EV("Title = 'CEO'", {"Title", NUL}), U);
}
Test(soql_r4_1_null, ne_value_on_null_is_unknown)
{
    /* R3.4: a comparison with a null field is not true, != included (three-valued logic). */
    cr_assert_eq(EV("Department != 'Sales'", {"Department", NUL}), U);
}
Test(soql_r4_1_null, not_eq_on_null_is_unknown)
{
    cr_assert_eq(EV("NOT Department = 'Sales'", {"Department", NUL}), U);
}
Test(soql_r4_1_null, lt_on_null_is_unknown) { cr_assert_eq(EV("Level < 5", {"Level", NUL}), U); }
Test(soql_r4_1_null, in_on_null_is_unknown)
{
    cr_assert_eq(EV("Country IN ('US')", {"Country", NUL}), U);
}
Test(soql_r4_1_null, in_with_null_matches_null)
{
    cr_assert_eq(EV("Country IN ('US', null)", {"Country", NUL}), T);
}
Test(soql_r4_1_null, not_in_on_null_is_unknown)
{
    cr_assert_eq(EV("Country NOT IN ('US', 'CA')", {"Country", NUL}), U);
}
Test(soql_r4_1_null, not_in_with_null_on_null_is_false)
{
    cr_assert_eq(EV("Country NOT IN ('US', null)", {"Country", NUL}), F);
}
Test(soql_r4_1_null, empty_string_field_is_null)
{
    cr_assert_eq(EV("Title = null", {"Title", S("")}), T);
}
Test(soql_r4_1_null, empty_string_literal_is_null)
{
    cr_assert_eq(EV("Title = ''", {"Title", NUL}), T);
}
Test(soql_r4_1_null, ne_empty_string_literal_means_not_null)
{
    cr_assert_eq(EV("Title != ''", {"Title", S("CEO")}), T);
}
Test(soql_r4_1_null, bool_eq_null_is_eq_false)
{
    cr_assert_eq(EV("IsActive = null", {"IsActive", B(false)}), T);
}
Test(soql_r4_1_null, bool_eq_null_true_field)
{
    cr_assert_eq(EV("IsActive = null", {"IsActive", B(true)}), F);
}
Test(soql_r4_1_null, bool_ne_null_is_eq_true)
{
    cr_assert_eq(EV("IsActive != null", {"IsActive", B(true)}), T);
}
Test(soql_r4_1_null, bool_not_in_never_null)
{
    cr_assert_eq(EV("IsActive NOT IN (true)", {"IsActive", B(false)}), T);
}
Test(soql_r4_1_null, gt_empty_literal_is_string)
{
    cr_assert_eq(EV("Title > ''", {"Title", S("a")}), T);
}
Test(soql_r4_1_null, like_on_empty_string_field_unknown)
{
    cr_assert_eq(EV("Title LIKE '%'", {"Title", S("")}), U);
}
Test(soql_r4_1_null, missing_field_is_null)
{
    cr_assert_eq(EV("Other = null", {"Title", S("x")}), T);
}

/* ================= R4.1: literal forms and typed comparisons ================= */

Test(soql_r4_1_lit, integer) { cr_assert_eq(EV("n = 42", {"n", N(42)}), T); }
Test(soql_r4_1_lit, decimal) { cr_assert_eq(EV("n = 3.25", {"n", N(3.25)}), T); }
Test(soql_r4_1_lit, negative) { cr_assert_eq(EV("n = -7", {"n", N(-7)}), T); }
Test(soql_r4_1_lit, negative_decimal_lt) { cr_assert_eq(EV("n < -0.5", {"n", N(-1)}), T); }
Test(soql_r4_1_lit, explicit_plus) { cr_assert_eq(EV("n = +3", {"n", N(3)}), T); }
Test(soql_r4_1_lit, decimal_matches_json_double) { cr_assert_eq(EV("n = 0.1", {"n", N(0.1)}), T); }
Test(soql_r4_1_lit, string_field_read_as_number)
{
    cr_assert_eq(EV("n > 10", {"n", S("12.5")}), T);
}
Test(soql_r4_1_lit, string_field_numbers_not_lexical)
{
    cr_assert_eq(EV("n < 10", {"n", S("9")}), T);
}
Test(soql_r4_1_lit, unparseable_string_vs_number_unknown)
{
    cr_assert_eq(EV("n = 10", {"n", S("ten")}), U);
}
Test(soql_r4_1_lit, unparseable_string_ne_number_unknown)
{
    cr_assert_eq(EV("n != 10", {"n", S("ten")}), U);
}
Test(soql_r4_1_lit, number_field_vs_numeric_string) { cr_assert_eq(EV("n = '5'", {"n", N(5)}), T); }
Test(soql_r4_1_lit, number_field_vs_text_unknown)
{
    cr_assert_eq(EV("n = 'five'", {"n", N(5)}), U);
}
Test(soql_r4_1_lit, bool_true) { cr_assert_eq(EV("IsActive = true", {"IsActive", B(true)}), T); }
Test(soql_r4_1_lit, bool_false) { cr_assert_eq(EV("IsActive = false", {"IsActive", B(true)}), F); }
Test(soql_r4_1_lit, bool_ne) { cr_assert_eq(EV("IsActive != false", {"IsActive", B(true)}), T); }
Test(soql_r4_1_lit, string_field_true)
{
    cr_assert_eq(EV("Flag__c = true", {"Flag__c", S("TRUE")}), T);
}
Test(soql_r4_1_lit, string_field_false)
{
    cr_assert_eq(EV("Flag__c = false", {"Flag__c", S("false")}), T);
}
Test(soql_r4_1_lit, string_field_not_bool_unknown)
{
    cr_assert_eq(EV("Flag__c = true", {"Flag__c", S("yes")}), U);
}
Test(soql_r4_1_lit, bool_field_vs_number_unknown)
{
    cr_assert_eq(EV("IsActive = 1", {"IsActive", B(true)}), U);
}
Test(soql_r4_1_lit, string_vs_bool_field)
{
    cr_assert_eq(EV("IsActive = 'true'", {"IsActive", B(true)}), T);
}

/* Strings and escapes. */
Test(soql_r4_1_str, escape_quote) { cr_assert_eq(EV("n = 'O\\'Brien'", {"n", S("O'Brien")}), T); }
Test(soql_r4_1_str, escape_double_quote)
{
    cr_assert_eq(EV("n = 'say \\\"hi\\\"'", {"n", S("say \"hi\"")}), T);
}
Test(soql_r4_1_str, escape_backslash) { cr_assert_eq(EV("n = 'a\\\\b'", {"n", S("a\\b")}), T); }
Test(soql_r4_1_str, escape_newline) { cr_assert_eq(EV("n = 'a\\nb'", {"n", S("a\nb")}), T); }
Test(soql_r4_1_str, escape_cr) { cr_assert_eq(EV("n = 'a\\rb'", {"n", S("a\rb")}), T); }
Test(soql_r4_1_str, escape_tab) { cr_assert_eq(EV("n = 'a\\tb'", {"n", S("a\tb")}), T); }
Test(soql_r4_1_str, escape_backspace) { cr_assert_eq(EV("n = 'a\\bb'", {"n", S("a\bb")}), T); }
Test(soql_r4_1_str, escape_formfeed) { cr_assert_eq(EV("n = 'a\\fb'", {"n", S("a\fb")}), T); }
/* Salesforce's escapes take the letter in either case */
Test(soql_r4_1_str, escape_letters_in_upper_case)
{
    cr_assert_eq(EV("n = 'a\\Nb'", {"n", S("a\nb")}), T);
    cr_assert_eq(EV("n = 'a\\Rb'", {"n", S("a\rb")}), T);
    cr_assert_eq(EV("n = 'a\\Tb'", {"n", S("a\tb")}), T);
    cr_assert_eq(EV("n = 'a\\Bb'", {"n", S("a\bb")}), T);
    cr_assert_eq(EV("n = 'a\\Fb'", {"n", S("a\fb")}), T);
    cr_assert_eq(EV("n LIKE 'a\\T%'", {"n", S("a\tbc")}), T);
}
Test(soql_r4_1_str, escape_unicode) { cr_assert_eq(EV("n = 'Ren\\u00e9'", {"n", S("René")}), T); }
Test(soql_r4_1_str, escape_unicode_ascii_folds)
{
    cr_assert_eq(EV("n = '\\u0041BC'", {"n", S("abc")}), T);
}
Test(soql_r4_1_str, escape_unicode_surrogate_pair)
{
    cr_assert_eq(EV("n = '\\uD83D\\uDE00'", {"n", S("\xF0\x9F\x98\x80")}), T);
}
Test(soql_r4_1_str, escape_unicode_percent_literal_in_like)
{
    /* \u0025 is an escaped '%': a literal, not a wildcard. */
    cr_assert_eq(EV("n LIKE '5\\u0025'", {"n", S("50")}), F);
}
Test(soql_r4_1_str, utf8_passes_through)
{
    cr_assert_eq(EV("City = 'München'", {"City", S("München")}), T);
}

/* Dates (R4.1): fields arrive as strings. */
Test(soql_r4_1_date, date_eq_date)
{
    cr_assert_eq(EV("d = 2024-05-01", {"d", S("2024-05-01")}), T);
}
Test(soql_r4_1_date, date_lt_date)
{
    cr_assert_eq(EV("d < 2024-05-01", {"d", S("2024-04-30")}), T);
}
Test(soql_r4_1_date, date_vs_datetime_field_same_day)
{
    cr_assert_eq(EV("d = 2024-05-01", {"d", S("2024-05-01T23:59:59.000Z")}), T);
}
Test(soql_r4_1_date, date_vs_datetime_field_next_day)
{
    cr_assert_eq(EV("d > 2024-05-01", {"d", S("2024-05-02T00:00:00.000Z")}), T);
}
Test(soql_r4_1_date, datetime_eq_instant)
{
    cr_assert_eq(EV("t = 2024-05-01T10:00:00Z", {"t", S("2024-05-01T10:00:00.000Z")}), T);
}
Test(soql_r4_1_date, datetime_offset_same_instant)
{
    cr_assert_eq(EV("t = 2024-05-01T12:00:00+02:00", {"t", S("2024-05-01T10:00:00.000Z")}), T);
}
Test(soql_r4_1_date, datetime_negative_offset)
{
    cr_assert_eq(EV("t > 2024-05-01T10:00:00-01:00", {"t", S("2024-05-01T11:30:00Z")}), T);
}
Test(soql_r4_1_date, datetime_fraction)
{
    cr_assert_eq(EV("t < 2024-05-01T10:00:00.5Z", {"t", S("2024-05-01T10:00:00.499Z")}), T);
}
Test(soql_r4_1_date, datetime_field_rest_offset_form)
{
    cr_assert_eq(EV("t = 2024-05-01T10:00:00Z", {"t", S("2024-05-01T10:00:00.000+0000")}), T);
}
Test(soql_r4_1_date, datetime_literal_vs_date_field_compares_day)
{
    cr_assert_eq(EV("d = 2024-05-01T18:00:00Z", {"d", S("2024-05-01")}), T);
}
Test(soql_r4_1_date, date_in_clock_zone)
{
    /* 2024-05-02T03:00Z is still 2024-05-01 at UTC-5. */
    soql_clock ny = {NOW_MS, -300};
    cr_assert_eq(EVC(&ny, "d = 2024-05-01", {"d", S("2024-05-02T03:00:00Z")}), T);
}
Test(soql_r4_1_date, unparseable_date_field_unknown)
{
    cr_assert_eq(EV("d = 2024-05-01", {"d", S("May 1st")}), U);
}
Test(soql_r4_1_date, number_field_vs_date_unknown)
{
    cr_assert_eq(EV("d = 2024-05-01", {"d", N(20240501)}), U);
}

/* Relative date literals (R4.1): clock 2024-05-15T12:00Z, Wednesday. */
Test(soql_r4_1_rel, today) { cr_assert_eq(EV("d = TODAY", {"d", S("2024-05-15")}), T); }
Test(soql_r4_1_rel, today_datetime_field)
{
    cr_assert_eq(EV("d = TODAY", {"d", S("2024-05-15T00:00:00.000Z")}), T);
}
Test(soql_r4_1_rel, today_not_yesterday)
{
    cr_assert_eq(EV("d = TODAY", {"d", S("2024-05-14T23:59:59Z")}), F);
}
Test(soql_r4_1_rel, yesterday) { cr_assert_eq(EV("d = YESTERDAY", {"d", S("2024-05-14")}), T); }
Test(soql_r4_1_rel, tomorrow) { cr_assert_eq(EV("d = TOMORROW", {"d", S("2024-05-16")}), T); }
Test(soql_r4_1_rel, this_week_starts_sunday)
{
    cr_assert_eq(EV("d = THIS_WEEK", {"d", S("2024-05-12")}), T);
}
Test(soql_r4_1_rel, this_week_ends_saturday)
{
    cr_assert_eq(EV("d = THIS_WEEK", {"d", S("2024-05-19")}), F);
}
Test(soql_r4_1_rel, last_week) { cr_assert_eq(EV("d = LAST_WEEK", {"d", S("2024-05-11")}), T); }
Test(soql_r4_1_rel, next_week) { cr_assert_eq(EV("d = NEXT_WEEK", {"d", S("2024-05-25")}), T); }
Test(soql_r4_1_rel, this_month) { cr_assert_eq(EV("d = THIS_MONTH", {"d", S("2024-05-31")}), T); }
Test(soql_r4_1_rel, last_month) { cr_assert_eq(EV("d = LAST_MONTH", {"d", S("2024-04-01")}), T); }
Test(soql_r4_1_rel, next_month) { cr_assert_eq(EV("d = NEXT_MONTH", {"d", S("2024-06-30")}), T); }
Test(soql_r4_1_rel, last_90_days_includes_today)
{
    cr_assert_eq(EV("d = LAST_90_DAYS", {"d", S("2024-05-15")}), T);
}
Test(soql_r4_1_rel, last_90_days_start)
{
    cr_assert_eq(EV("d = LAST_90_DAYS", {"d", S("2024-02-15")}), T);
}
Test(soql_r4_1_rel, last_90_days_before_start)
{
    cr_assert_eq(EV("d = LAST_90_DAYS", {"d", S("2024-02-14")}), F);
}
Test(soql_r4_1_rel, next_90_days_excludes_today)
{
    cr_assert_eq(EV("d = NEXT_90_DAYS", {"d", S("2024-05-15")}), F);
}
Test(soql_r4_1_rel, next_90_days_end)
{
    cr_assert_eq(EV("d = NEXT_90_DAYS", {"d", S("2024-08-13")}), T);
}
Test(soql_r4_1_rel, last_n_days_range)
{
    cr_assert_eq(EV("d = LAST_N_DAYS:3", {"d", S("2024-05-12T08:00:00Z")}), T);
}
Test(soql_r4_1_rel, last_n_days_outside)
{
    cr_assert_eq(EV("d = LAST_N_DAYS:3", {"d", S("2024-05-11")}), F);
}
Test(soql_r4_1_rel, lt_means_before_range_start)
{
    cr_assert_eq(EV("d < LAST_N_DAYS:3", {"d", S("2024-05-11")}), T);
}
Test(soql_r4_1_rel, lt_inside_range_false)
{
    cr_assert_eq(EV("d < LAST_N_DAYS:3", {"d", S("2024-05-12")}), F);
}
Test(soql_r4_1_rel, gt_means_after_range_end)
{
    cr_assert_eq(EV("d > LAST_N_DAYS:3", {"d", S("2024-05-16")}), T);
}
Test(soql_r4_1_rel, ge_from_range_start)
{
    cr_assert_eq(EV("d >= THIS_MONTH", {"d", S("2024-05-01")}), T);
}
Test(soql_r4_1_rel, le_up_to_range_end)
{
    cr_assert_eq(EV("d <= THIS_MONTH", {"d", S("2024-05-31T23:00:00Z")}), T);
}
Test(soql_r4_1_rel, ne_outside_range)
{
    cr_assert_eq(EV("d != THIS_YEAR", {"d", S("2023-12-31")}), T);
}
Test(soql_r4_1_rel, next_n_days)
{
    cr_assert_eq(EV("d = NEXT_N_DAYS:3", {"d", S("2024-05-18")}), T);
}
Test(soql_r4_1_rel, next_n_weeks)
{
    cr_assert_eq(EV("d = NEXT_N_WEEKS:2", {"d", S("2024-06-01")}), T);
}
Test(soql_r4_1_rel, last_n_weeks)
{
    cr_assert_eq(EV("d = LAST_N_WEEKS:2", {"d", S("2024-04-28")}), T);
}
Test(soql_r4_1_rel, last_n_weeks_excludes_this_week)
{
    cr_assert_eq(EV("d = LAST_N_WEEKS:2", {"d", S("2024-05-12")}), F);
}
Test(soql_r4_1_rel, next_n_months)
{
    cr_assert_eq(EV("d = NEXT_N_MONTHS:2", {"d", S("2024-07-31")}), T);
}
Test(soql_r4_1_rel, last_n_months)
{
    cr_assert_eq(EV("d = LAST_N_MONTHS:2", {"d", S("2024-03-01")}), T);
}
Test(soql_r4_1_rel, last_n_months_excludes_this_month)
{
    cr_assert_eq(EV("d = LAST_N_MONTHS:2", {"d", S("2024-05-01")}), F);
}
Test(soql_r4_1_rel, this_quarter)
{
    cr_assert_eq(EV("d = THIS_QUARTER", {"d", S("2024-04-01")}), T);
}
Test(soql_r4_1_rel, last_quarter)
{
    cr_assert_eq(EV("d = LAST_QUARTER", {"d", S("2024-03-31")}), T);
}
Test(soql_r4_1_rel, next_quarter)
{
    cr_assert_eq(EV("d = NEXT_QUARTER", {"d", S("2024-09-30")}), T);
}
Test(soql_r4_1_rel, next_n_quarters)
{
    cr_assert_eq(EV("d = NEXT_N_QUARTERS:2", {"d", S("2024-12-31")}), T);
}
Test(soql_r4_1_rel, last_n_quarters_across_year)
{
    cr_assert_eq(EV("d = LAST_N_QUARTERS:2", {"d", S("2023-10-01")}), T);
}
Test(soql_r4_1_rel, this_year) { cr_assert_eq(EV("d = THIS_YEAR", {"d", S("2024-01-01")}), T); }
Test(soql_r4_1_rel, last_year) { cr_assert_eq(EV("d = LAST_YEAR", {"d", S("2023-06-30")}), T); }
Test(soql_r4_1_rel, next_year) { cr_assert_eq(EV("d = NEXT_YEAR", {"d", S("2025-12-31")}), T); }
Test(soql_r4_1_rel, next_n_years)
{
    cr_assert_eq(EV("d = NEXT_N_YEARS:2", {"d", S("2026-12-31")}), T);
}
Test(soql_r4_1_rel, last_n_years)
{
    cr_assert_eq(EV("d = LAST_N_YEARS:2", {"d", S("2022-01-01")}), T);
}
Test(soql_r4_1_rel, last_n_years_excludes_this_year)
{
    cr_assert_eq(EV("d = LAST_N_YEARS:2", {"d", S("2024-01-01")}), F);
}
Test(soql_r4_1_rel, today_in_clock_zone)
{
    /* 02:00Z on the 15th is still the 14th at UTC-5, for the clock and for the field. */
    soql_clock ny = {NOW_MS - 10 * 3600000LL, -300};
    cr_assert_eq(EVC(&ny, "d = TODAY", {"d", S("2024-05-15T01:00:00Z")}), T);
}
Test(soql_r4_1_rel, today_zone_date_field)
{
    soql_clock ny = {NOW_MS - 10 * 3600000LL, -300};
    cr_assert_eq(EVC(&ny, "d = TODAY", {"d", S("2024-05-14")}), T);
}
Test(soql_r4_1_rel, no_clock_is_unknown)
{
    cr_assert_eq(eval_rec("d = TODAY", (fv[]){{"d", S("2024-05-15")}}, 1, NULL), U);
}

Test(soql_r4_1_rel, n_days_ago) { cr_assert_eq(EV("d = N_DAYS_AGO:3", {"d", S("2024-05-12")}), T); }
Test(soql_r4_1_rel, n_weeks_ago)
{
    cr_assert_eq(EV("d = N_WEEKS_AGO:1", {"d", S("2024-05-05")}), T);
}
Test(soql_r4_1_rel, n_months_ago)
{
    cr_assert_eq(EV("d = N_MONTHS_AGO:12", {"d", S("2023-05-31")}), T);
}
Test(soql_r4_1_rel, n_quarters_ago)
{
    cr_assert_eq(EV("d = N_QUARTERS_AGO:1", {"d", S("2024-02-10")}), T);
}
Test(soql_r4_1_rel, n_years_ago)
{
    cr_assert_eq(EV("d = N_YEARS_AGO:1", {"d", S("2023-02-10")}), T);
}
Test(soql_r4_1_rel, last_n_days_zero_is_today)
{
    cr_assert_eq(EV("d = LAST_N_DAYS:0", {"d", S("2024-05-15")}), T);
}
Test(soql_r4_1_rel, in_list_of_ranges)
{
    cr_assert_eq(EV("d IN (LAST_MONTH, NEXT_MONTH)", {"d", S("2024-06-10")}), T);
}
Test(soql_r4_1_rel, relative_vs_non_date_string_unknown)
{
    cr_assert_eq(EV("d = TODAY", {"d", S("today")}), U);
}
Test(soql_r4_1_rel, year_boundary_last_month)
{
    /* 2024-01-10: last month is December 2023. */
    soql_clock jan = {1704844800000LL, 0};
    cr_assert_eq(EVC(&jan, "d = LAST_MONTH", {"d", S("2023-12-31")}), T);
}
Test(soql_r4_1_rel, week_across_year)
{
    /* 2025-01-01 is a Wednesday; its week began on Sunday 2024-12-29. */
    soql_clock ny = {1735732800000LL, 0};
    cr_assert_eq(EVC(&ny, "d = THIS_WEEK", {"d", S("2024-12-29")}), T);
}

/* ================= R4.2: errors, with their exact columns ================= */

Test(soql_r4_2, example_from_contract)
{
    cr_assert_str_eq(cerr("Title = 'CEO' AND Department = )"),
                     "column 32: expected a value after '=', found ')'");
}
Test(soql_r4_2, value_missing_at_end)
{
    cr_assert_str_eq(cerr("Title ="), "column 8: expected a value after '=', found end of filter");
}
Test(soql_r4_2, and_or_mixed)
{
    cr_assert_str_eq(cerr("a = 1 AND b = 2 OR c = 3"),
                     "column 17: AND and OR cannot be mixed without parentheses");
}
Test(soql_r4_2, or_and_mixed)
{
    cr_assert_str_eq(cerr("a = 1 OR b = 2 AND c = 3"),
                     "column 16: AND and OR cannot be mixed without parentheses");
}
Test(soql_r4_2, mixed_inside_parentheses)
{
    cr_assert_str_eq(cerr("x = 0 AND (a = 1 OR b = 2 AND c = 3)"),
                     "column 27: AND and OR cannot be mixed without parentheses");
}
Test(soql_r4_2, mixed_after_not)
{
    cr_assert_str_eq(cerr("a = 1 AND NOT b = 2 OR c = 3"),
                     "column 21: AND and OR cannot be mixed without parentheses");
}
Test(soql_r4_2, missing_close_parenthesis)
{
    cr_assert_str_eq(cerr("(a = 1 AND b = 2"),
                     "column 17: expected ')' to close the '(' at column 1, found end of filter");
}
Test(soql_r4_2, extra_close_parenthesis)
{
    cr_assert_str_eq(cerr("a = 1)"), "column 6: expected AND, OR or end of filter, found ')'");
}
Test(soql_r4_2, empty_parentheses)
{
    cr_assert_str_eq(cerr("()"), "column 2: expected a condition after '(', found ')'");
}
Test(soql_r4_2, condition_missing_after_and)
{
    cr_assert_str_eq(cerr("a = 1 AND"),
                     "column 10: expected a condition after 'AND', found end of filter");
}
Test(soql_r4_2, condition_missing_after_not)
{
    cr_assert_str_eq(cerr("NOT )"), "column 5: expected a condition after 'NOT', found ')'");
}
Test(soql_r4_2, where_alone)
{
    cr_assert_str_eq(cerr("WHERE"),
                     "column 6: expected a condition after 'WHERE', found end of filter");
}
Test(soql_r4_2, value_where_field_expected)
{
    cr_assert_str_eq(cerr("'Sales' = Department"),
                     "column 1: expected a condition, found string 'Sales'");
}
Test(soql_r4_2, keyword_where_field_expected)
{
    cr_assert_str_eq(cerr("AND a = 1"), "column 1: expected a condition, found 'AND'");
}
Test(soql_r4_2, missing_operator)
{
    cr_assert_str_eq(cerr("Title 'CEO'"),
                     "column 7: expected an operator after 'Title', found string 'CEO'");
}
Test(soql_r4_2, unknown_word_operator)
{
    cr_assert_str_eq(cerr("Title MATCHES 'x'"),
                     "column 7: expected an operator after 'Title', found 'MATCHES'");
}
Test(soql_r4_2, unknown_operator_double_equals)
{
    cr_assert_str_eq(cerr("Title == 'x'"),
                     "column 7: unknown operator '==' (SOQL compares with a single '=')");
}
Test(soql_r4_2, unknown_operator_bang)
{
    cr_assert_str_eq(cerr("a ! 1"), "column 3: unknown operator '!'");
}
Test(soql_r4_2, unknown_operator_arrow)
{
    cr_assert_str_eq(cerr("a => 1"), "column 3: unknown operator '=>'");
}
Test(soql_r4_2, trailing_garbage)
{
    cr_assert_str_eq(cerr("a = 1 b = 2"), "column 7: expected AND, OR or end of filter, found 'b'");
}
Test(soql_r4_2, unexpected_character)
{
    cr_assert_str_eq(cerr("a = 1 AND b = #"), "column 15: unexpected character '#'");
}
Test(soql_r4_2, double_quoted_string_rejected)
{
    cr_assert_str_eq(cerr("a = \"x\""),
                     "column 5: unexpected character '\"' (text goes in single quotes: 'like "
                     "this')");
}
Test(soql_r4_2, column_counts_characters_not_bytes)
{
    /* é is two bytes but one column. */
    cr_assert_str_eq(cerr("a = 'é' AND b = )"), "column 17: expected a value after '=', found ')'");
}
Test(soql_r4_2, unterminated_string)
{
    cr_assert_str_eq(
        cerr("a = 1 AND Title = 'CEO"),
        "column 19: unterminated string: expected a closing quote, found end of filter");
}
Test(soql_r4_2, unterminated_by_escaped_quote)
{
    cr_assert_str_eq(
        cerr("a = 'x\\'"),
        "column 5: unterminated string: expected a closing quote, found end of filter");
}
Test(soql_r4_2, bad_escape)
{
    cr_assert_str_eq(
        cerr("a = 'x\\qy'"),
        "column 7: expected an escape (\\n \\r \\t \\b \\f \\\" \\' \\\\ \\uXXXX) after "
        "'\\', found 'q'");
}
Test(soql_r4_2, percent_escape_outside_like)
{
    cr_assert_str_eq(cerr("a = '50\\%'"),
                     "column 8: escape '\\%' is only allowed in a LIKE pattern");
}
Test(soql_r4_2, underscore_escape_outside_like)
{
    cr_assert_str_eq(cerr("a IN ('x', 'a\\_b')"),
                     "column 14: escape '\\_' is only allowed in a LIKE pattern");
}
Test(soql_r4_2, bad_unicode_escape)
{
    cr_assert_str_eq(cerr("a = '\\u12G4'"), "column 6: expected four hex digits after '\\u'");
}
Test(soql_r4_2, short_unicode_escape)
{
    cr_assert_str_eq(cerr("a = '\\u12'"), "column 6: expected four hex digits after '\\u'");
}
Test(soql_r4_2, lone_high_surrogate)
{
    cr_assert_str_eq(cerr("a = '\\uD83Dx'"),
                     "column 6: expected a low surrogate '\\uDC00'-'\\uDFFF' after '\\uD83D'");
}
Test(soql_r4_2, lone_low_surrogate)
{
    cr_assert_str_eq(cerr("a = '\\uDE00'"), "column 6: unexpected low surrogate '\\uDE00'");
}
Test(soql_r4_2, nul_escape_rejected)
{
    cr_assert_str_eq(cerr("a = '\\u0000'"), "column 6: '\\u0000' is not allowed in a string");
}
Test(soql_r4_2, like_with_number)
{
    cr_assert_str_eq(cerr("Title LIKE 5"),
                     "column 12: expected a string pattern after 'LIKE', found '5'");
}
Test(soql_r4_2, like_with_null)
{
    cr_assert_str_eq(cerr("Title LIKE null"),
                     "column 12: expected a string pattern after 'LIKE', found 'null'");
}
Test(soql_r4_2, in_list_empty)
{
    cr_assert_str_eq(cerr("Country IN ()"),
                     "column 13: expected at least one value in the IN list, found ')'");
}
Test(soql_r4_2, not_in_list_empty)
{
    cr_assert_str_eq(cerr("Country NOT IN ()"),
                     "column 17: expected at least one value in the NOT IN list, found ')'");
}
Test(soql_r4_2, in_without_parenthesis)
{
    cr_assert_str_eq(cerr("Country IN 'US'"),
                     "column 12: expected '(' after 'IN', found string 'US'");
}
Test(soql_r4_2, in_list_trailing_comma)
{
    cr_assert_str_eq(cerr("Country IN ('US',)"),
                     "column 18: expected a value in the IN list, found ')'");
}
Test(soql_r4_2, in_list_missing_comma)
{
    cr_assert_str_eq(cerr("Country IN ('US' 'CA')"),
                     "column 18: expected ',' or ')' in the IN list, found string 'CA'");
}
Test(soql_r4_2, in_list_unclosed)
{
    cr_assert_str_eq(cerr("Country IN ('US'"),
                     "column 17: expected ',' or ')' in the IN list, found end of filter");
}
Test(soql_r4_2, not_without_in)
{
    cr_assert_str_eq(cerr("Title NOT LIKE 'x%'"),
                     "column 11: expected IN after 'NOT', found 'LIKE'");
}
Test(soql_r4_2, includes_with_number)
{
    cr_assert_str_eq(cerr("m INCLUDES (1)"),
                     "column 13: expected a string in the INCLUDES list, found '1'");
}
Test(soql_r4_2, excludes_empty)
{
    cr_assert_str_eq(cerr("m EXCLUDES ()"),
                     "column 13: expected at least one value in the EXCLUDES list, found ')'");
}
Test(soql_r4_2, includes_blank_value)
{
    cr_assert_str_eq(
        cerr("m INCLUDES (' ; ')"),
        "column 13: expected a picklist value in the INCLUDES list, found string ' ; '");
}
Test(soql_r4_2, lt_null)
{
    cr_assert_str_eq(cerr("Title < null"),
                     "column 7: operator '<' cannot be used with null (only = and !=)");
}
Test(soql_r4_2, ge_true)
{
    cr_assert_str_eq(cerr("IsActive >= true"),
                     "column 10: operator '>=' cannot be used with true or false (only = and !=)");
}
Test(soql_r4_2, field_as_value)
{
    cr_assert_str_eq(cerr("Title = Department"),
                     "column 9: expected a value after '=', found 'Department' (text goes in "
                     "single quotes: 'Department')");
}
Test(soql_r4_2, bad_number)
{
    cr_assert_str_eq(cerr("n = 12abc"), "column 5: expected a number, found '12abc'");
}
Test(soql_r4_2, number_trailing_dot)
{
    cr_assert_str_eq(cerr("n = 12."), "column 5: expected a number, found '12.'");
}
Test(soql_r4_2, bad_date)
{
    cr_assert_str_eq(cerr("d = 2024-02-30"),
                     "column 5: expected a date (YYYY-MM-DD) or date-time (YYYY-MM-DDThh:mm:ssZ or "
                     "+hh:mm), found '2024-02-30'");
}
Test(soql_r4_2, datetime_without_zone)
{
    cr_assert_str_eq(cerr("d > 2024-02-01T10:00:00"),
                     "column 5: expected a date (YYYY-MM-DD) or date-time (YYYY-MM-DDThh:mm:ssZ or "
                     "+hh:mm), found '2024-02-01T10:00:00'");
}
Test(soql_r4_2, multi_line_filter_errors_give_line_and_column)
{
    /* A multi-line filter (a YAML block) is placed by its line and the column in that line: a
     * column counted through the whole text names no place one can find. */
    cr_assert_str_eq(cerr("a = 1\nAND b = )"),
                     "line 2, column 9: expected a value after '=', found ')'");
    cr_assert_str_eq(cerr("a = 1\n  AND b = 'x'\n  AND c > > 5\n"),
                     "line 3, column 11: expected a value after '>', found '>'");
    /* a block's final newline does not make it several lines */
    cr_assert_str_eq(cerr("b = )\n"), "column 5: expected a value after '=', found ')'");
}
Test(soql_r4_2, where_in_the_middle_rejected)
{
    cr_assert_str_eq(cerr("a = 1 AND WHERE b = 2"),
                     "column 11: expected a condition after 'AND', found 'WHERE'");
}
Test(soql_r4_2, leap_day_is_valid) { cr_assert(compiles("d = 2024-02-29")); }
Test(soql_r4_2, relative_missing_n)
{
    cr_assert_str_eq(cerr("d = LAST_N_DAYS"),
                     "column 16: expected ':' after 'LAST_N_DAYS', found end of filter");
}
Test(soql_r4_2, relative_bad_n)
{
    cr_assert_str_eq(
        cerr("d = LAST_N_DAYS:-3"),
        "column 17: expected a whole number from 0 to 1000000 after 'LAST_N_DAYS:', found '-3'");
}
Test(soql_r4_2, relative_n_too_large)
{
    cr_assert_str_eq(cerr("d = NEXT_N_YEARS:99999999"),
                     "column 18: expected a whole number from 0 to 1000000 after 'NEXT_N_YEARS:', "
                     "found '99999999'");
}
Test(soql_r4_2, fiscal_literal_unsupported)
{
    cr_assert_str_eq(
        cerr("d = THIS_FISCAL_QUARTER"),
        "column 5: fiscal date literals such as 'THIS_FISCAL_QUARTER' are not supported");
}
/* A misspelt date literal is named as one, not taken for text without its quotes (following
 * that hint, 'LAST_N_DAY', would load and match nobody). */
Test(soql_r4_2, misspelt_date_literal_gets_its_nearest_name)
{
    cr_assert_str_eq(cerr("d = LAST_N_DAY:30"),
                     "column 5: 'LAST_N_DAY' is not a date literal; did you mean LAST_N_DAYS:n? "
                     "(TODAY, LAST_N_DAYS:n, THIS_YEAR, ...)");
    cr_assert_str_eq(cerr("d > next_wek"),
                     "column 5: 'NEXT_WEK' is not a date literal; did you mean NEXT_WEEK? "
                     "(TODAY, LAST_N_DAYS:n, THIS_YEAR, ...)");
    cr_assert_str_eq(cerr("Department = Sales"),
                     "column 14: expected a value after '=', found 'Sales' (text goes in single "
                     "quotes: 'Sales')");
}
/* SQL's and code's habits, each with what SOQL wants instead */
Test(soql_r4_2, sql_slips_get_the_soql_form)
{
    cr_assert_str_eq(cerr("Title = \"VP\""),
                     "column 9: unexpected character '\"' (text goes in single quotes: 'like "
                     "this')");
    cr_assert_str_eq(cerr("a = 'x' && b = 'y'"), "column 9: unexpected character '&' (write AND)");
    cr_assert_str_eq(cerr("a = 'x' || b = 'y'"), "column 9: unexpected character '|' (write OR)");
    cr_assert_str_eq(cerr("a = 'x';"),
                     "column 8: unexpected character ';' (a filter ends without ';')");
    cr_assert_str_eq(cerr("Title IS NULL"),
                     "column 7: expected an operator after 'Title', found 'IS' (write Title = "
                     "null, or Title != null)");
    cr_assert_str_eq(cerr("Title CONTAINS 'VP'"),
                     "column 7: expected an operator after 'Title', found 'CONTAINS' (write Title "
                     "LIKE '%text%')");
}
Test(soql_r4_2, trailing_dot_in_field)
{
    cr_assert_str_eq(cerr("Profile. = 'x'"),
                     "column 9: expected a field name after '.', found ' '");
}
Test(soql_r4_2, too_deeply_nested)
{
    char text[400];
    size_t n = 0;
    for (int i = 0; i < 101; i++)
        text[n++] = '(';
    memcpy(text + n, "a = 1", 6);
    cr_assert_str_eq(cerr(text),
                     "column 101: too deeply nested: at most 100 levels of parentheses and NOT");
}
Test(soql_r4_2, long_token_truncated_in_message)
{
    cr_assert_str_eq(cerr("a = 1 AbcdefghijAbcdefghijAbcdefghijAbcdefghijAbcdefghij"),
                     "column 7: expected AND, OR or end of filter, found "
                     "'AbcdefghijAbcdefghijAbcdefghijAbcdefghij...'");
}
Test(soql_r4_2, control_character_shown_escaped)
{
    cr_assert_str_eq(cerr("a = 1 \x01"), "column 7: unexpected character '\\x01'");
}

/* ================= type hints: valid, but never true ================= */

static val_type hint_type(void *ctx, const char *field)
{
    (void)ctx;
    if (strcasecmp(field, "IsActive") == 0) return VAL_BOOL;
    if (strcasecmp(field, "Quota__c") == 0) return VAL_NUM;
    return VAL_STR;
}

static void hint_collect(void *ctx, const char *msg)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 4096 - n, "%s\n", msg);
}

/* Compiles (must succeed), runs soql_type_hints and returns its messages, one a line. */
static const char *hints(const char *filter, size_t *count)
{
    static char out[4096];
    out[0] = '\0';
    soql_filter *f;
    perr err = {{0}};
    if (soql_compile(filter, &f, &err) < 0)
        cr_assert_fail("'%s' did not compile: %s", filter, err.msg);
    *count = soql_type_hints(f, filter, hint_type, NULL, hint_collect, out);
    soql_free(f);
    return out;
}

/* R4.2 makes only a filter that does not parse an error; these parse, and the evaluator can never
 * make them true, so they are named with their place (what Salesforce would refuse). */
Test(soql_r4_2, a_checkbox_compared_with_text_or_a_number_is_hinted_at_its_place)
{
    size_t n;
    const char *out = hints("IsActive = 'yes' AND Title = 'x' AND IsActive != 5", &n);
    cr_assert_eq(n, 2, "%s", out);
    cr_assert_not_null(strstr(out, "column 12: IsActive is a checkbox: compared with 'yes', this "
                                   "condition is never true (write true or false, without quotes"),
                       "%s", out);
    cr_assert_not_null(strstr(out, "column 50: IsActive is a checkbox: compared with 5,"), "%s",
                       out);
    /* and each of them is indeed never true */
    fv on[] = {{"IsActive", B(true)}}, off[] = {{"IsActive", B(false)}};
    cr_assert_neq(eval_rec("IsActive = 'yes'", on, 1, &utc), SOQL_TRUE);
    cr_assert_neq(eval_rec("IsActive != 'yes'", off, 1, &utc), SOQL_TRUE);
    cr_assert_neq(eval_rec("IsActive != 5", on, 1, &utc), SOQL_TRUE);
}

Test(soql_r4_2, what_the_evaluator_reads_is_not_hinted)
{
    size_t n;
    const char *out = hints("IsActive = 'TRUE' AND IsActive != false AND IsActive = null AND "
                            "Quota__c > '12.5' AND Quota__c IN (1, 2) AND Title = 5 AND Title "
                            "LIKE 'a%' AND Profile.Name = 5 AND Quota__c != null",
                            &n);
    cr_assert_eq(n, 0, "%s", out);
    cr_assert_eq(soql_type_hints(NULL, "x", hint_type, NULL, hint_collect, NULL), 0);
}

Test(soql_r4_2, numbers_lists_patterns_and_order_are_hinted)
{
    size_t n;
    const char *out = hints("Quota__c > 'big' AND IsActive IN (true, 'no') AND Quota__c LIKE "
                            "'1%' AND IsActive < 'true' AND Quota__c NOT IN (1, 'x')",
                            &n);
    cr_assert_eq(n, 5, "%s", out);
    cr_assert_not_null(strstr(out, "column 12: Quota__c is a number: compared with 'big', this "
                                   "condition is never true (write a number, without quotes"),
                       "%s", out);
    cr_assert_not_null(strstr(out, "compared with 'no', this item of the list never matches"), "%s",
                       out);
    cr_assert_not_null(strstr(out, "Quota__c is a number: LIKE matches text only"), "%s", out);
    cr_assert_not_null(strstr(out, "compared with 'true', this condition is never true (a "
                                   "checkbox compares with = and != only"),
                       "%s", out);
    cr_assert_not_null(strstr(out, "compared with 'x', this condition is never true"), "%s", out);
    fv q[] = {{"Quota__c", N(5)}};
    cr_assert_neq(eval_rec("Quota__c NOT IN (1, 'x')", q, 1, &utc), SOQL_TRUE,
                  "a dead item makes NOT IN unknown");
}

Test(soql_r4_2, a_hint_in_a_filter_of_several_lines_names_the_line)
{
    size_t n;
    const char *out = hints("Title = 'x'\nAND Manager.IsActive = 'no'\f\n", &n);
    cr_assert_eq(n, 1, "%s", out);
    cr_assert_not_null(strstr(out, "line 2, column 24: Manager.IsActive is a checkbox: compared "
                                   "with 'no', "),
                       "the literal without the blanks after it: %s", out);
}

/* ================= evaluation does not allocate ================= */

/* soql_eval.c holds everything soql_eval runs; its object must reference no allocator. */
Test(soql_perf, eval_object_references_no_allocator)
{
    char lib[4096], cmd[4200], line[512];
    const char *bd = getenv("PV_BUILD_DIR");
    if (bd) {
        snprintf(lib, sizeof lib, "%s/internal/soql/libpv_soql.a", bd);
    } else {
        char exe[4000];
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k <= 0) cr_skip_test("cannot locate the build directory");
        exe[k] = '\0';
        char *slash = strrchr(exe, '/');
        *slash = '\0'; /* .../tests */
        snprintf(lib, sizeof lib, "%s/../internal/soql/libpv_soql.a", exe);
    }
    if (access(lib, R_OK) != 0) cr_skip_test("%s not found", lib);
    snprintf(cmd, sizeof cmd, "nm -A -u '%s' 2>/dev/null", lib);
    FILE *p = popen(cmd, "r");
    if (!p) cr_skip_test("nm not available");
    static const char *const banned[] = {" malloc",      " calloc",  " realloc",  " free",
                                         " xmalloc",     " xcalloc", " xrealloc", " strdup",
                                         " arena_alloc", " xstrdup", " xstrndup", " strndup"};
    int eval_syms = 0;
    while (fgets(line, sizeof line, p)) {
        if (!strstr(line, "soql_eval.c.o:")) continue;
        eval_syms++;
        line[strcspn(line, "\n")] = '\0';
        for (size_t i = 0; i < sizeof banned / sizeof banned[0]; i++) {
            const char *hit = strstr(line, banned[i]);
            cr_assert(!(hit && hit[strlen(banned[i])] == '\0'), "soql_eval.c references %s",
                      banned[i] + 1);
        }
    }
    int rc = pclose(p);
    if (eval_syms == 0 || rc != 0) cr_skip_test("nm gave no symbols for soql_eval.c.o");
}

/* A compiled filter evaluates the same, many times over: nothing is consumed by evaluating. */
Test(soql_perf, repeated_evaluation_is_stable)
{
    soql_filter *f;
    perr err;
    cr_assert_eq(soql_compile("Title LIKE '%a%b%' AND Country IN ('US','CA')", &f, &err), 0);
    value_t v[2] = {value_str("xAyBz"), value_str("ca")};
    for (int i = 0; i < 100000; i++)
        if (soql_eval(f, v, &utc) != SOQL_TRUE) cr_assert_fail("changed at %d", i);
    soql_free(f);
}

/* R4.1 "Salesforce's semantics": an Id's 15-character form and its 18-character form name one
 * record; the 15-character form is case-sensitive. Only for Id fields (names ending in Id). */
Test(soql_r4_1, id_fields_match_the_15_character_form)
{
    const char *id18 = "0055e000001MgRAAA0";
    cr_assert_eq(EV("ManagerId = '0055e000001MgRA'", {"ManagerId", S(id18)}), T);
    cr_assert_eq(EV("managerid = '0055e000001MgRA'", {"managerid", S(id18)}), T);
    cr_assert_eq(EV("ManagerId != '0055e000001MgRA'", {"ManagerId", S(id18)}), F);
    cr_assert_eq(EV("Id IN ('0055e000001OtHC', '0055e000001MgRA')", {"Id", S(id18)}), T);
    cr_assert_eq(EV("Id NOT IN ('0055e000001MgRA')", {"Id", S(id18)}), F);
    cr_assert_eq(
        EV("Manager.ProfileId = '00e5e000000PrOf'", {"Manager.ProfileId", S("00e5e000000PrOfAAE")}),
        T);
    /* the 15-character form written in another case is another record */
    cr_assert_eq(EV("ManagerId = '0055e000001mgra'", {"ManagerId", S(id18)}), F);
    /* a value in the 15-character form, a literal in the 18 */
    cr_assert_eq(EV("ManagerId = '0055e000001MgRAAA0'", {"ManagerId", S("0055e000001MgRA")}), T);
    /* 18 against 18 ignores case, as every string comparison does */
    cr_assert_eq(EV("ManagerId = '0055E000001MGRAAA0'", {"ManagerId", S(id18)}), T);
    /* another prefix, or not an Id field, or not an Id's characters: no match */
    cr_assert_eq(EV("ManagerId = '0055e000001MgRB'", {"ManagerId", S(id18)}), F);
    cr_assert_eq(EV("Title = '0055e000001MgRA'", {"Title", S(id18)}), F);
    cr_assert_eq(EV("ManagerId = '0055e000001MgR-'", {"ManagerId", S("0055e000001MgR-AA0")}), F);
    cr_assert_eq(EV("ManagerId LIKE '0055e000001MgRA'", {"ManagerId", S(id18)}), F);
}
