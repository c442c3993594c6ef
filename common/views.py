from django.shortcuts import render

from characters.forms import StoryForm
from characters.selectors import story_list_with_covers


def home(request):
    context = {"stories": story_list_with_covers(), "story_form": StoryForm()}
    return render(request, "common/home.html", context)
