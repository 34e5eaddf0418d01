"""Refuse malformed requests before any middleware trips over them.

django-prometheus reads Content-Length with a bare int(): a header like
"abc" would be a 500 before any view could answer.
"""

from django.http import JsonResponse


class MalformedRequestMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        length = request.META.get("CONTENT_LENGTH", "")
        if length and not (length.isascii() and length.isdigit()):
            return JsonResponse(
                {"error": "the Content-Length header is not a number", "detail": None}, status=400
            )
        return self.get_response(request)
