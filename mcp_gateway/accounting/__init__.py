"""Usage and cost: the price table, exact cost, running totals (`Ledger`) and budgets."""

from ._budget import (
    BudgetExceededError,
    BudgetHold,
    BudgetStore,
    BudgetUnavailableError,
    Budgets,
    Reservation,
    format_usd,
)
from ._ledger import DIMENSIONS, Charge, Ledger, Totals
from ._prices import MILLION_TOKENS, STALE_AFTER_DAYS, Price, PriceTable, cost_of, input_token_bound, price_warning

__all__ = [
    "DIMENSIONS",
    "MILLION_TOKENS",
    "STALE_AFTER_DAYS",
    "BudgetExceededError",
    "BudgetHold",
    "BudgetStore",
    "BudgetUnavailableError",
    "Budgets",
    "Charge",
    "Ledger",
    "Price",
    "PriceTable",
    "Reservation",
    "Totals",
    "cost_of",
    "format_usd",
    "input_token_bound",
    "price_warning",
]
