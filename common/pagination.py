"""The API's one page shape: `?page=N` from 1, `?limit=` up to MAX_PAGE_SIZE, answered as DRF's
`{"count", "next", "previous", "results"}`."""

from rest_framework.pagination import PageNumberPagination

PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


class LimitPagination(PageNumberPagination):
    page_size = PAGE_SIZE
    page_size_query_param = "limit"
    max_page_size = MAX_PAGE_SIZE
