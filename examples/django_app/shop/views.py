"""Three views: an HTML page, a JSON document and an upload."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

PRODUCTS = {n: {"id": n, "name": f"Trail product {n}", "price_eur": 19.9 + n} for n in range(1, 25)}


def index(request: HttpRequest) -> HttpResponse:
    items = "".join(
        f"<li><a href='/products/{n}/'>{p['name']}</a></li>" for n, p in PRODUCTS.items()
    )
    return HttpResponse(f"<!doctype html><title>Trail shop</title><ul>{items * 20}</ul>")


def product(request: HttpRequest, product_id: int) -> HttpResponse:
    found = PRODUCTS.get(product_id)
    if found is None:
        return JsonResponse({"error": "no such product"}, status=404)
    return JsonResponse(found)


@csrf_exempt
@require_POST
def upload(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"received_bytes": len(request.body)}, status=201)
