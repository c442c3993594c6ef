from django import template

from common.scores import score_band

register = template.Library()
register.filter("score_band", score_band)
